/**
 * The agent registry's liveness jobs, for the agents service: agents silent for
 * HEARTBEAT_TIMEOUT_MS go offline, HTTP agents' health endpoints are polled (a bounded number at
 * once, through the egress policy), and agents offline for AGENT_RETENTION_HOURS are removed. Each
 * change is the agent's own event through its actor, like any other.
 */
import type { Service, ServiceSchema } from "moleculer";
import { isExpired, type AgentEvent, type StoredAgent } from "../src/domain/agents/decide";
import { LIVE_STATUSES } from "../src/domain/agents/status";
import type { AppConfig } from "../src/platform/config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { forEachBounded } from "../src/runtime/bounded";
import type { EgressPolicy } from "../src/runtime/egress";
import type { EntityActor } from "../src/runtime/entity-actor";
import { HEALTH_POLL_CONCURRENCY, probeHealth } from "../src/runtime/health-checks";
import { every } from "../src/runtime/periodic";
import type { AgentStatus } from "../src/types";
import type { StorageThis } from "./db.mixin";

interface LivenessThis extends Service, StorageThis<StoredAgent> {
	config: AppConfig;
	egress: EgressPolicy;
	actor: EntityActor<StoredAgent>;
	livenessTimers: NodeJS.Timeout[];
	apply(id: string, event: AgentEvent): Promise<StoredAgent>;
	announce(agent: StoredAgent, previous?: AgentStatus, removed?: boolean): void;
	sweepSilent(): Promise<void>;
	sweepExpired(): Promise<void>;
	pollHealth(): Promise<void>;
}

const schema: TypedServiceSchema<LivenessThis> = {
	name: "agents",
	methods: {
		async sweepSilent(this: LivenessThis) {
			const timeoutMs = this.config.heartbeatTimeoutMs;
			const cutoff = new Date(Date.now() - timeoutMs).toISOString();
			const silent = await this.store.find({ filter: { status: { $in: LIVE_STATUSES.slice() }, last_heartbeat: { $lt: cutoff } } });
			for (const agent of silent) await this.apply(agent.id, { type: "silence", timeoutMs }).catch(() => undefined);
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
				if (removed) this.announce(removed, undefined, true);
			}
		},

		async pollHealth(this: LivenessThis) {
			const agents = await this.store.find({ filter: { status: { $in: ["active", "busy", "unhealthy", "offline"] } } });
			await forEachBounded(agents.filter(a => a.endpoints.health), HEALTH_POLL_CONCURRENCY, async a => {
				const healthy = await probeHealth(this.egress, a.endpoints.health!, this.config.healthCheckTimeoutMs);
				await this.apply(a.id, { type: "health", healthy }).catch(() => undefined);
			});
		}
	},

	started(this: LivenessThis) {
		this.livenessTimers = [];
		const warn = (name: string) => (err: unknown) => this.logger.warn({ err: (err as Error).message }, `${name} failed`);
		const sweepMs = Math.max(50, Math.min(5000, Math.floor(this.config.heartbeatTimeoutMs / 4)));
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
