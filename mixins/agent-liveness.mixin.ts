/**
 * The agent registry's liveness jobs, for the agents service: the beats this node took go to the
 * other core nodes once a tick (one `agent.heard` batch); agents silent for HEARTBEAT_TIMEOUT_MS
 * (by the stored record and the liveness book together) go offline, answers about an agent show
 * the book's last beat and load (`toWire`), HTTP agents' health endpoints are polled (a bounded number at
 * once, through the egress policy), and agents offline for AGENT_RETENTION_HOURS are removed. Each
 * change is the agent's own event through its actor, like any other.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { agentToWire, isExpired, lastHeardAt, type AgentEvent, type StoredAgent } from "../src/domain/agents/decide";
import { isSilent, LIVE_STATUSES } from "../src/domain/agents/status";
import type { AppConfig } from "../src/platform/config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { forEachBounded } from "../src/runtime/bounded";
import type { EgressPolicy } from "../src/runtime/egress";
import type { EntityActor } from "../src/runtime/entity-actor";
import { HEALTH_POLL_CONCURRENCY, probeHealth } from "../src/runtime/health-checks";
import { LivenessBook } from "../src/runtime/liveness";
import { every } from "../src/runtime/periodic";
import type { Snapshot } from "../src/runtime/snapshot";
import { EVENTS, type Agent, type AgentStatus } from "../src/types";
import type { StorageThis } from "./db.mixin";

interface LivenessThis extends Service, StorageThis<StoredAgent> {
	config: AppConfig;
	egress: EgressPolicy;
	actor: EntityActor<StoredAgent>;
	snapshot: Snapshot<StoredAgent>;
	liveness: LivenessBook;
	/** When this node began to hear beats: until a timeout after it, silence is not proven. */
	listeningSince: number;
	livenessTimers: NodeJS.Timeout[];
	/** The snapshot's agents by id, for the one they were built from. */
	snapshotIndex?: { of: StoredAgent[]; byId: Map<string, StoredAgent> };
	apply(id: string, event: AgentEvent): Promise<StoredAgent>;
	announce(agent: StoredAgent, previous?: AgentStatus, removed?: boolean): void;
	sweepSilent(): Promise<void>;
	shareBeats(): Promise<void>;
	toWire(agent: StoredAgent): Agent;
	known(id: string): Promise<StoredAgent | undefined>;
	sweepExpired(): Promise<void>;
	pollHealth(): Promise<void>;
}

const schema: TypedServiceSchema<LivenessThis> = {
	name: "agents",
	events: {
		/** Heartbeats another core node took (this one's own come back too: already in the book). */
		[EVENTS.agentHeard](this: LivenessThis, ctx: Context<unknown>) {
			if (ctx.nodeID !== this.broker.nodeID) this.liveness.mergeBatch(ctx.params);
		}
	},

	methods: {
		/** The public shape, with the liveness book's word on when it was last heard and its load. */
		toWire(this: LivenessThis, agent: StoredAgent): Agent {
			const wire = agentToWire(agent);
			const heard = this.liveness.get(agent.id);
			if (!heard) return wire;
			if (heard.at > Date.parse(agent.last_heartbeat)) wire.last_heartbeat = new Date(heard.at).toISOString();
			if (heard.load !== undefined) wire.current_load = heard.load;
			return wire;
		},

		/** The agent as the registry was last read (the snapshot), else as stored; undefined if unknown. */
		async known(this: LivenessThis, id: string): Promise<StoredAgent | undefined> {
			const agents = await this.snapshot.get();
			if (this.snapshotIndex?.of !== agents) this.snapshotIndex = { of: agents, byId: new Map(agents.map(a => [a.id, a])) };
			return this.snapshotIndex.byId.get(id) ?? (await this.store.get(id)) ?? undefined;
		},

		async sweepSilent(this: LivenessThis) {
			const timeoutMs = this.config.heartbeatTimeoutMs;
			const now = Date.now();
			// Beats live in memory only: a node that just started has not heard anyone yet.
			if (!isSilent(this.listeningSince, now, timeoutMs)) return;
			for (const agent of await this.snapshot.get()) {
				if (!LIVE_STATUSES.includes(agent.status)) continue;
				const heardAt = this.liveness.get(agent.id)?.at ?? 0;
				if (isSilent(lastHeardAt(agent, heardAt), now, timeoutMs)) await this.apply(agent.id, { type: "silence", timeoutMs, lastHeardAt: heardAt }).catch(() => undefined);
			}
		},

		async shareBeats(this: LivenessThis) {
			const batch = this.liveness.takeBatch();
			if (batch) await this.broker.broadcast(EVENTS.agentHeard, batch);
		},

		/** Offline longer than AGENT_RETENTION_HOURS: removed, as an operator would. */
		async sweepExpired(this: LivenessThis) {
			const retentionMs = this.config.agentRetentionHours * 3600_000;
			const cutoff = new Date(Date.now() - retentionMs).toISOString();
			for (const agent of await this.store.find({ filter: { status: "offline", last_heartbeat: { $lt: cutoff } } })) {
				const removed = await this.actor.exclusive(agent.id, async () => {
					const fresh = await this.store.get(agent.id);
					return fresh && isExpired(fresh, Date.now(), retentionMs) && (await this.store.remove(agent.id)) ? fresh : null;
				});
				if (removed) {
					this.liveness.forget(removed.id);
					this.announce(removed, undefined, true);
				}
			}
		},

		async pollHealth(this: LivenessThis) {
			const agents = await this.store.find({ filter: { status: { $in: ["active", "busy", "unhealthy", "offline"] } } });
			await forEachBounded(agents.filter(a => a.endpoints.health), HEALTH_POLL_CONCURRENCY, async a => {
				const healthy = await probeHealth(this.egress, a.endpoints.health!, this.config.healthCheckTimeoutMs);
				if (healthy) this.liveness.record(a.id, Date.now());
				await this.apply(a.id, { type: "health", healthy }).catch(() => undefined);
			});
		}
	},

	created(this: LivenessThis) {
		this.liveness = new LivenessBook();
	},

	started(this: LivenessThis) {
		this.livenessTimers = [];
		this.listeningSince = Date.now();
		const warn = (name: string) => (err: unknown) => this.logger.warn({ err: (err as Error).message }, `${name} failed`);
		const sweepMs = Math.max(50, Math.min(5000, Math.floor(this.config.heartbeatTimeoutMs / 4)));
		// Beats reach the other nodes at least four times within a timeout, so none goes offline for want of news.
		this.livenessTimers.push(every(Math.max(25, Math.min(1000, Math.floor(this.config.heartbeatTimeoutMs / 4))), () => this.shareBeats(), warn("sharing heartbeats")));
		this.livenessTimers.push(every(sweepMs, () => this.sweepSilent(), warn("liveness sweep")));
		this.livenessTimers.push(every(this.config.healthCheckIntervalMs, () => this.pollHealth(), warn("health poll")));
		const retentionMs = this.config.agentRetentionHours * 3600_000;
		this.livenessTimers.push(every(Math.max(1000, Math.min(60_000, retentionMs / 4)), () => this.sweepExpired(), warn("retention sweep")));
	},

	stopped(this: LivenessThis) {
		for (const timer of this.livenessTimers ?? []) clearInterval(timer);
	}
};

export const agentLivenessMixin = schema as unknown as Partial<ServiceSchema>;
