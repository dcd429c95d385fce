/**
 * The agent registry actor. Each agent's record changes through its mailbox on this node and a
 * compare-and-set in the store across nodes, so concurrent heartbeats, sweeps and health polls
 * never lose an update. Every change is announced as `agent.updated`.
 */
import { createHash } from "node:crypto";
import type { Context, Service } from "moleculer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { actsOnOwnAgent } from "../src/domain/access";
import {
	isSilent, LIVE_STATUSES, statusAfterHealthCheck, statusAfterHeartbeat, statusAfterRegistration, statusAfterSilence
} from "../src/domain/agents/status";
import { appConfig } from "../src/platform/app-config";
import type { AppConfig } from "../src/platform/config";
import { conflict, forbidden, notFound } from "../src/platform/errors";
import { KeyedQueue } from "../src/runtime/keyed-queue";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { DuplicateKeyError } from "../src/storage/entity-store";
import { mintToken } from "../src/platform/tokens";
import {
	AGENT_STATUSES, AGENT_TYPES, EVENTS,
	type Agent, type AgentHeartbeat, type AgentListQuery, type AgentRegistration, type AgentStatus, type AgentUpdatedEvent,
	type Principal, type RegisteredAgent
} from "../src/types";

type Meta = { user?: Principal | null };

interface AgentsThis extends Service, StorageThis<Agent> {
	config: AppConfig;
	mailbox: KeyedQueue;
	timers: NodeJS.Timeout[];
	load(id: string): Promise<Agent>;
	changeStatus(agent: Agent, status: AgentStatus, extra?: Partial<Agent>): Promise<Agent | null>;
	announce(agent: Agent, previous?: AgentStatus, removed?: boolean): void;
	registrySnapshot(): Promise<Agent[]>;
	snapshot?: { at: number; agents: Promise<Agent[]> };
	refreshing?: { at: number; agents: Promise<Agent[]> };
	snapshotGeneration: number;
	invalidateSnapshot(): void;
	sweepSilent(): Promise<void>;
	pollHealth(): Promise<void>;
	checkHealth(agent: Agent): Promise<void>;
}

/** Same name → same id, on every node, without a lookup: registration stays idempotent under races. */
export function agentIdFor(name: string): string {
	return `agent-${createHash("sha256").update(name).digest("hex").slice(0, 16)}`;
}

const urlField = { type: "url", optional: true };
const LIST_MAX_AGE_MS = 1000;

const AgentsService: TypedServiceSchema<AgentsThis> = {
	name: "agents",
	mixins: [
		storageMixin({
			name: "agents",
			idField: "id",
			queryable: { name: "string", type: "string", status: "string", node_id: "string", last_heartbeat: "string" },
			indexes: [["status"], ["type", "status"], ["node_id"], ["name"]]
		})
	],

	actions: {
		register: {
			params: {
				name: { type: "string", min: 1, max: 200, trim: true },
				type: { type: "enum", values: [...AGENT_TYPES] },
				capabilities: { type: "array", items: { type: "string", min: 1 }, max: 100 },
				endpoints: {
					type: "object",
					optional: true,
					strict: "remove",
					props: { task: urlField, status: urlField, health: urlField }
				},
				resources: {
					type: "object",
					optional: true,
					props: {
						cpu: { type: "number", positive: true, optional: true },
						memory: { type: "string", optional: true },
						gpu: { type: "boolean", optional: true }
					}
				},
				node_id: { type: "string", optional: true },
				service: { type: "string", optional: true }
			},
			async handler(this: AgentsThis, ctx: Context<AgentRegistration, Meta>): Promise<RegisteredAgent> {
				const reg = ctx.params;
				const id = agentIdFor(reg.name);
				// One registration at a time per node, so the MAX_AGENTS count cannot be raced past locally.
				const agent = await this.mailbox.run("$registrations", () =>
					this.mailbox.run(id, async () => {
						const existing = await this.store.get(id);
						if (!existing || existing.status === "offline") {
							const live = await this.store.count({ status: { $in: LIVE_STATUSES.slice() } });
							if (live >= this.config.maxAgents)
								throw conflict(`Agent limit reached (MAX_AGENTS=${this.config.maxAgents})`, { max_agents: this.config.maxAgents });
						}
						const now = new Date().toISOString();
						const fields = {
							name: reg.name,
							type: reg.type,
							status: statusAfterRegistration(existing?.status),
							capabilities: [...new Set(reg.capabilities)],
							endpoints: reg.endpoints ?? {},
							resources: reg.resources ?? {},
							node_id: reg.node_id ?? null,
							service: reg.service ?? null,
							last_heartbeat: now,
							updated_at: now
						};
						if (existing) return (await this.store.update(id, fields))!;
						const created: Agent = { id, ...fields, current_load: 0, running_tasks: 0, registered_at: now };
						try {
							return await this.store.insert(created);
						} catch (err) {
							// Another node registered the same name a moment ago: this becomes an update.
							if (err instanceof DuplicateKeyError) return (await this.store.update(id, fields))!;
							throw err;
						}
					})
				);
				this.announce(agent);
				const token = mintToken(this.config.secrets.jwtSecret, { sub: `agent:${agent.id}`, roles: ["agent"], agent_id: agent.id });
				return { ...agent, token };
			}
		},

		list: {
			params: {
				type: { type: "enum", values: [...AGENT_TYPES], optional: true },
				status: { type: "enum", values: [...AGENT_STATUSES], optional: true },
				capability: { type: "string", optional: true, min: 1 }
			},
			cache: { keys: ["type", "status", "capability"], ttl: 1 },
			async handler(this: AgentsThis, ctx: Context<AgentListQuery>) {
				const { type, status, capability } = ctx.params;
				const agents = (await this.registrySnapshot()).filter(
					a => (!type || a.type === type) && (!status || a.status === status) && (!capability || a.capabilities.includes(capability))
				);
				return { agents };
			}
		},

		get: {
			params: { id: "string" },
			handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				return this.load(ctx.params.id);
			}
		},

		remove: {
			params: { id: "string" },
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				const agent = await this.mailbox.run(ctx.params.id, async () => {
					const found = await this.load(ctx.params.id);
					await this.store.remove(found.id);
					return found;
				});
				this.announce({ ...agent, status: "offline" }, agent.status, true);
				return { id: agent.id, removed: true };
			}
		},

		heartbeat: {
			params: {
				id: "string",
				status: { type: "enum", values: ["active", "busy", "draining"], optional: true },
				current_load: { type: "number", min: 0, max: 1, optional: true }
			},
			async handler(this: AgentsThis, ctx: Context<AgentHeartbeat & { id: string }, Meta>) {
				const { id, status, current_load } = ctx.params;
				if (ctx.meta.user && !actsOnOwnAgent(ctx.meta.user, id)) throw forbidden("An agent may only heartbeat as itself");
				const now = new Date().toISOString();
				// The common case (an active agent reporting nothing new) is one conditional write.
				if (status === undefined && current_load === undefined && (await this.store.updateIf(id, { status: "active" }, { last_heartbeat: now, updated_at: now })))
					return { id, status: "active", last_heartbeat: now };
				return this.mailbox.run(id, async () => {
					const agent = await this.load(id);
					const next = statusAfterHeartbeat(agent.status, status);
					const updated = (await this.store.update(id, {
						status: next,
						last_heartbeat: now,
						updated_at: now,
						...(current_load !== undefined ? { current_load } : {})
					}))!;
					if (next !== agent.status || (current_load !== undefined && current_load !== agent.current_load))
						this.announce(updated, agent.status);
					return { id, status: updated.status, last_heartbeat: now };
				});
			}
		},

		drain: {
			params: { id: "string" },
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				return this.mailbox.run(ctx.params.id, async () => {
					const agent = await this.load(ctx.params.id);
					return (await this.changeStatus(agent, "draining")) ?? agent;
				});
			}
		},

		/** A dispatcher's count of tasks it runs on an agent (not a REST route); several core nodes each report theirs. */
		setLoad: {
			visibility: "public",
			params: {
				id: "string",
				node_id: "string",
				running_tasks: { type: "number", integer: true, min: 0 }
			},
			async handler(this: AgentsThis, ctx: Context<{ id: string; node_id: string; running_tasks: number }>) {
				const { id, node_id, running_tasks } = ctx.params;
				return this.mailbox.run(id, async () => {
					const agent = await this.store.get(id);
					if (!agent) return null;
					const running_by_node = { ...agent.running_by_node, [node_id]: running_tasks };
					if (!running_tasks) delete running_by_node[node_id];
					const total = Object.values(running_by_node).reduce((sum, n) => sum + n, 0);
					const updated = await this.store.update(id, { running_by_node, running_tasks: total });
					if (updated) this.announce(updated);
					return updated;
				});
			}
		},

		/** Store reachability, for `/ready` on any node. */
		ping: {
			visibility: "public",
			async handler(this: AgentsThis) {
				await this.store.ping();
				return { ok: true };
			}
		}
	},

	events: {
		/** A change made on another core node: our snapshot of the registry is out of date. */
		[EVENTS.agentUpdated](this: AgentsThis) {
			this.invalidateSnapshot();
		},

		/** A Moleculer node left: its in-cluster agents are gone now, not after HEARTBEAT_TIMEOUT_MS. */
		async "$node.disconnected"(this: AgentsThis, ctx: Context<{ node: { id: string } }>) {
			const nodeId = ctx.params.node.id;
			const agents = await this.store.find({ filter: { node_id: nodeId, status: { $ne: "offline" } } });
			await Promise.all(agents.map(a => this.mailbox.run(a.id, () => this.changeStatus(a, "offline"))));
		}
	},

	methods: {
		async load(this: AgentsThis, id: string) {
			const agent = await this.store.get(id);
			if (!agent) throw notFound("Agent", id);
			return agent;
		},

		/** Compare-and-set on the status this node saw: a concurrent change elsewhere wins, and we don't announce. */
		async changeStatus(this: AgentsThis, agent: Agent, status: AgentStatus, extra: Partial<Agent> = {}) {
			if (agent.status === status) return null;
			const updated_at = new Date().toISOString();
			const changed = await this.store.updateIf(
				agent.id,
				{ status: agent.status, last_heartbeat: agent.last_heartbeat },
				{ status, updated_at, ...extra }
			);
			if (!changed) return null;
			const next = { ...agent, status, updated_at, ...extra };
			this.announce(next, agent.status);
			return next;
		},

		/**
		 * Every agent, sorted by name. After a change announced anywhere in the cluster the next list reads
		 * the store; otherwise it is served from memory and re-read in the background once older than
		 * LIST_MAX_AGE_MS, so a heartbeat storm never puts a full read in a caller's path. Only
		 * `last_heartbeat` may lag, by about LIST_MAX_AGE_MS (heartbeats are not announced).
		 */
		async registrySnapshot(this: AgentsThis) {
			const read = () => {
				const generation = this.snapshotGeneration;
				const reading = { at: Date.now(), agents: this.store.find().then(all => all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) };
				reading.agents.then(
					// A read that began before a change must not be installed after it.
					() => {
						if (generation === this.snapshotGeneration && (!this.snapshot || this.snapshot.at <= reading.at)) this.snapshot = reading;
					},
					() => {
						if (this.snapshot === reading) this.snapshot = undefined;
					}
				);
				return reading;
			};
			if (!this.snapshot) return (this.snapshot = read()).agents;
			if (Date.now() - this.snapshot.at >= LIST_MAX_AGE_MS && !this.refreshing) {
				const refresh = (this.refreshing = read());
				refresh.agents.then(
					() => (this.refreshing = undefined),
					() => (this.refreshing = undefined)
				);
			}
			return this.snapshot.agents;
		},

		/** Something changed: the next list reads the store, and reads begun before now are not kept. */
		invalidateSnapshot(this: AgentsThis) {
			this.snapshot = undefined;
			this.snapshotGeneration++;
		},

		announce(this: AgentsThis, agent: Agent, previous?: AgentStatus, removed?: boolean) {
			this.invalidateSnapshot();
			const event: AgentUpdatedEvent = { agent };
			if (previous && previous !== agent.status) event.previous_status = previous;
			if (removed) event.removed = true;
			// Broadcast: every dispatcher and every gateway's realtime bridge in the cluster needs it.
			this.broker.broadcast(EVENTS.agentUpdated, event);
			if (this.broker.cacher) void this.broker.cacher.clean("agents.**");
		},

		async sweepSilent(this: AgentsThis) {
			const now = Date.now();
			const cutoff = new Date(now - this.config.heartbeatTimeoutMs).toISOString();
			const silent = await this.store.find({ filter: { status: { $in: LIVE_STATUSES.slice() }, last_heartbeat: { $lt: cutoff } } });
			for (const agent of silent) {
				await this.mailbox.run(agent.id, async () => {
					const fresh = await this.store.get(agent.id);
					if (!fresh || !isSilent(fresh.last_heartbeat, Date.now(), this.config.heartbeatTimeoutMs)) return;
					const next = statusAfterSilence(fresh.status);
					if (next) await this.changeStatus(fresh, next);
				});
			}
		},

		async pollHealth(this: AgentsThis) {
			const agents = await this.store.find({ filter: { status: { $in: ["active", "busy", "unhealthy", "offline"] } } });
			await Promise.all(agents.filter(a => a.endpoints.health).map(a => this.checkHealth(a)));
		},

		async checkHealth(this: AgentsThis, agent: Agent) {
			let healthy = false;
			try {
				const res = await fetch(agent.endpoints.health!, { signal: AbortSignal.timeout(this.config.healthCheckTimeoutMs) });
				healthy = res.ok;
				await res.body?.cancel();
			} catch {
				healthy = false;
			}
			await this.mailbox.run(agent.id, async () => {
				const fresh = await this.store.get(agent.id);
				if (!fresh) return;
				const next = statusAfterHealthCheck(fresh.status, healthy);
				// A healthy answer is as good as a heartbeat: HTTP agents need not send both.
				const heard = healthy ? { last_heartbeat: new Date().toISOString() } : {};
				if (next) await this.changeStatus(fresh, next, heard);
				else if (healthy) await this.store.updateIf(fresh.id, { status: fresh.status }, heard);
			});
		}
	},

	created(this: AgentsThis) {
		this.config = appConfig(this.broker);
		this.mailbox = new KeyedQueue();
		this.timers = [];
		this.snapshotGeneration = 0;
	},

	started(this: AgentsThis) {
		const every = (ms: number, job: () => Promise<void>, name: string) => {
			let running = false;
			const timer = setInterval(() => {
				if (running) return;
				running = true;
				job()
					.catch(err => this.logger.warn({ err: (err as Error).message }, `${name} failed`))
					.finally(() => (running = false));
			}, ms);
			timer.unref();
			this.timers.push(timer);
		};
		every(Math.max(50, Math.min(5000, Math.floor(this.config.heartbeatTimeoutMs / 4))), () => this.sweepSilent(), "liveness sweep");
		every(this.config.healthCheckIntervalMs, () => this.pollHealth(), "health poll");
	},

	stopped(this: AgentsThis) {
		for (const timer of this.timers) clearInterval(timer);
	}
};

export default AgentsService;
