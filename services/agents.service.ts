/**
 * The agent registry actor. Every change to an agent is decided by `decideAgent` /
 * `decideRegistration` (src/domain/agents/decide.ts) and committed by the entity actor (mailbox +
 * compare-and-set), so concurrent heartbeats, sweeps and health polls on several nodes never lose
 * an update; news (status or load changed) is announced as `agent.updated`. A heartbeat that
 * changes no status is no write: it goes into the liveness book (src/runtime/liveness.ts), which
 * every answer about an agent reads its `last_heartbeat` and `current_load` from.
 */
import type { Context, Service } from "moleculer";
import { agentLivenessMixin } from "../mixins/agent-liveness.mixin";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { agentIdFor, agentTokenRegistration, agentToWire, decideAgent, decideRegistration, isOwnCurrentToken, type AgentEffect, type AgentEvent, type StoredAgent } from "../src/domain/agents/decide";
import { isAgentOnly } from "../src/domain/access";
import { isRejection } from "../src/domain/decision";
import { appConfig } from "../src/platform/app-config";
import type { AppConfig } from "../src/platform/config";
import { ApiError, forbidden, invalid, unauthorized } from "../src/platform/errors";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { expiryOf, mintAgentToken } from "../src/platform/tokens";
import { deliveryKey, isServerService, principalOf } from "../src/platform/trust";
import { EntityActor, type Outcome } from "../src/runtime/entity-actor";
import { egressPolicy, type EgressPolicy } from "../src/runtime/egress";
import type { LivenessBook } from "../src/runtime/liveness";
import { Snapshot } from "../src/runtime/snapshot";
import { COLLECTIONS } from "../src/storage/collections";
import { DuplicateKeyError } from "../src/storage/entity-store";
import {
	AGENT_STATUSES, AGENT_TYPES, EVENTS,
	type Agent, type AgentHeartbeat, type AgentList, type AgentListQuery, type AgentRegistration, type AgentStatus, type AgentUpdatedEvent,
	type HeartbeatAnswer, type RegisteredAgent
} from "../src/types";

type Meta = { token?: string };

interface AgentsThis extends Service, StorageThis<StoredAgent> {
	config: AppConfig;
	egress: EgressPolicy;
	actor: EntityActor<StoredAgent>;
	snapshot: Snapshot<StoredAgent>;
	liveness: LivenessBook;
	apply(id: string, event: AgentEvent): Promise<StoredAgent>;
	announce(agent: StoredAgent, previous?: AgentStatus, removed?: boolean): void;
	execute(outcome: Outcome<StoredAgent, AgentEffect>): void;
	agentToken(agent: StoredAgent): string;
	toWire(agent: StoredAgent): Agent;
	known(id: string): Promise<StoredAgent | undefined>;
}

export { agentIdFor };

/** A token still this young is handed back as it is: renewing on every heartbeat would only cost signatures. */
const RENEW_AFTER_FRACTION = 0.1;
const LIST_LIMIT_MAX = 1000;

const urlField = { type: "url", optional: true };
const LIST_MAX_AGE_MS = 1000;

const byName = (a: Agent, b: Agent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const AgentsService: TypedServiceSchema<AgentsThis> = {
	name: "agents",
	mixins: [storageMixin(COLLECTIONS.agents), agentLivenessMixin],

	actions: {
		register: {
			// An agent's own token too: it keeps its registration (see `agentTokenRegistration`).
			access: { level: "operate", apiKey: true, agent: true },
			params: {
				name: { type: "string", min: 1, max: 200, trim: true },
				type: { type: "enum", values: [...AGENT_TYPES] },
				capabilities: { type: "array", items: { type: "string", min: 1 }, max: 100 },
				endpoints: { type: "object", optional: true, strict: "remove", props: { task: urlField, status: urlField, health: urlField } },
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
				const { task, status, health } = ctx.params.endpoints ?? {};
				const refused = await this.egress.refusedFields({ "endpoints.task": task, "endpoints.status": status, "endpoints.health": health });
				// Deliveries call `<service>.execute`, and a call to one of ours would carry this node's system token.
				const service = ctx.params.service;
				if (service && (isServerService(service) || service.startsWith("$")))
					refused.push({ field: "service", message: `'${service}' is a service of the server, not an agent's`, type: "reserved" });
				if (refused.length) throw invalid(refused);
				const id = agentIdFor(ctx.params.name);
				const by = principalOf(ctx);
				// One registration at a time per node, so the MAX_AGENTS count cannot be raced past locally.
				const agent = await this.actor.exclusive("$registrations", async () => {
					const context = async () => ({ id, by, now: new Date(), storedAgents: await this.store.count(), maxAgents: this.config.maxAgents });
					const refusal = (current: StoredAgent | null) => agentTokenRegistration(by, current, id);
					if (!(await this.store.get(id))) {
						const refused = refusal(null);
						if (refused) throw new ApiError(refused.code, refused.message);
						const decided = decideRegistration(null, ctx.params, await context());
						if ("reject" in decided) throw new ApiError(decided.reject.code, decided.reject.message, decided.reject.details);
						try {
							return await this.store.insert(decided.record);
						} catch (err) {
							// Another node registered the same name a moment ago: this becomes an update.
							if (!(err instanceof DuplicateKeyError)) throw err;
						}
					}
					const known = await context();
					const { entity } = await this.actor.change(id, current => {
						const refused = refusal(current);
						if (refused) return { reject: refused };
						const decided = decideRegistration(current, ctx.params, known);
						return "reject" in decided ? decided : { change: decided.record, effects: [] };
					});
					return entity;
				});
				this.announce(agent);
				return { ...agentToWire(agent), token: this.agentToken(agent), delivery_key: deliveryKey(this.config.secrets.jwtSecret, agent) };
			}
		},

		list: {
			access: { level: "read" },
			params: {
				type: { type: "enum", values: [...AGENT_TYPES], optional: true },
				status: { type: "enum", values: [...AGENT_STATUSES], optional: true },
				capability: { type: "string", optional: true, min: 1 },
				limit: { type: "number", integer: true, min: 1, max: LIST_LIMIT_MAX, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true }
			},
			cache: { keys: ["type", "status", "capability", "limit", "offset"], ttl: 1 },
			async handler(this: AgentsThis, ctx: Context<AgentListQuery & { limit: number; offset: number }>): Promise<AgentList> {
				const { type, status, capability, limit, offset } = ctx.params;
				const agents = (await this.snapshot.get()).filter(
					a => (!type || a.type === type) && (!status || a.status === status) && (!capability || a.capabilities.includes(capability))
				);
				return { agents: agents.slice(offset, offset + limit).map(a => this.toWire(a)), total: agents.length, limit, offset };
			}
		},

		get: {
			access: { level: "read" },
			params: { id: "string" },
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				return this.toWire(await this.actor.load(ctx.params.id));
			}
		},

		remove: {
			access: { level: "operate" },
			params: { id: "string" },
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				const agent = await this.actor.exclusive(ctx.params.id, async () => {
					const found = await this.actor.load(ctx.params.id);
					await this.store.remove(found.id);
					return found;
				});
				this.liveness.forget(agent.id);
				this.announce({ ...agent, status: "offline" }, agent.status, true);
				return { id: agent.id, removed: true };
			}
		},

		heartbeat: {
			access: { level: "operate", agent: true },
			params: {
				id: "string",
				status: { type: "enum", values: ["active", "busy", "draining"], optional: true },
				current_load: { type: "number", min: 0, max: 1, optional: true }
			},
			async handler(this: AgentsThis, ctx: Context<AgentHeartbeat & { id: string }, Meta>): Promise<HeartbeatAnswer> {
				const { id, status, current_load } = ctx.params;
				const by = principalOf(ctx);
				const event: AgentEvent = { type: "heartbeat", report: { status, current_load }, by: by ?? undefined };
				const now = Date.now();
				// Decided first on the registry as last read: most beats change nothing and so write nothing.
				const seen = await this.known(id);
				const decided = seen ? decideAgent(seen, event, { now: new Date(now) }) : null;
				if (decided && isRejection(decided)) throw new ApiError(decided.reject.code, decided.reject.message);
				// Nothing to write: the beat is liveness only (most are).
				const quiet = seen && decided?.change === null ? seen : null;
				// Into the book first, so that an announcement of this beat carries its load.
				const loadBefore = seen ? (this.liveness.get(id)?.load ?? seen.current_load) : undefined;
				if (seen) this.liveness.record(id, now, current_load);
				const agent =
					quiet ??
					(await this.apply(id, event).catch(err => {
						// Its agent was removed: its token is revoked, like one of an earlier registration.
						if (by && isAgentOnly(by) && (err as ApiError).type === "NOT_FOUND")
							throw by.agent_id === id ? unauthorized("This agent token belongs to a removed registration; register again") : forbidden("An agent may only heartbeat as itself");
						throw err;
					}));
				if (!seen) this.liveness.record(id, now, current_load);
				// A new load is news for the panel and the dispatchers, though not a write.
				else if (quiet && current_load !== undefined && current_load !== loadBefore) this.announce(quiet);
				const last_heartbeat = new Date(now).toISOString();
				// The agent's token, renewed once some of its life is spent (the one presented while it is young).
				const presented = ctx.meta.token;
				const young = by && presented && isOwnCurrentToken(by, agent) && (expiryOf(presented) ?? 0) * 1000 - Date.now() > this.config.agentTokenTtlSec * 1000 * (1 - RENEW_AFTER_FRACTION);
				return { id, status: agent.status, last_heartbeat, token: young ? presented : this.agentToken(agent) };
			}
		},

		drain: {
			access: { level: "operate" },
			params: { id: "string" },
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				return this.toWire(await this.apply(ctx.params.id, { type: "drain" }));
			}
		},

		/** A dispatcher's count of tasks it runs on an agent (not a REST route); several core nodes each report theirs. */
		setLoad: {
			visibility: "public",
			params: { id: "string", node_id: "string", running_tasks: { type: "number", integer: true, min: 0 } },
			async handler(this: AgentsThis, ctx: Context<{ id: string; node_id: string; running_tasks: number }>) {
				const { id, node_id, running_tasks } = ctx.params;
				return this.apply(id, { type: "load", node_id, running_tasks }).then(agent => this.toWire(agent), err => {
					if ((err as ApiError).type === "NOT_FOUND") return null;
					throw err;
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
		[EVENTS.agentUpdated](this: AgentsThis, ctx: Context<AgentUpdatedEvent>) {
			// Our own news is already in the snapshot (`announce`); another node's is read afresh.
			if (ctx.nodeID !== this.broker.nodeID) this.snapshot.invalidate();
			if (ctx.params.removed) this.liveness.forget(ctx.params.agent.id);
		},

		/** A Moleculer node left: its in-cluster agents are gone now, not after HEARTBEAT_TIMEOUT_MS. */
		async "$node.disconnected"(this: AgentsThis, ctx: Context<{ node: { id: string } }>) {
			const agents = await this.store.find({ filter: { node_id: ctx.params.node.id, status: { $ne: "offline" } } });
			await Promise.all(agents.map(a => this.apply(a.id, { type: "node-left" }).catch(err => this.logger.warn({ err, agent: a.id }, "could not mark agent offline"))));
		}
	},

	methods: {
		async apply(this: AgentsThis, id: string, event: AgentEvent) {
			const outcome = await this.actor.change(id, agent => decideAgent(agent, event, { now: new Date() }));
			this.execute(outcome);
			return outcome.entity;
		},

		execute(this: AgentsThis, { entity, effects }: Outcome<StoredAgent, AgentEffect>) {
			for (const effect of effects) if (effect.type === "announce") this.announce(entity, effect.previous);
		},

		announce(this: AgentsThis, agent: StoredAgent, previous?: AgentStatus, removed?: boolean) {
			this.snapshot.patch(a => a.id === agent.id, removed ? null : agent, byName);
			const event: AgentUpdatedEvent = { agent: this.toWire(agent) };
			if (previous && previous !== agent.status) event.previous_status = previous;
			if (removed) event.removed = true;
			// Broadcast: every dispatcher and every gateway's realtime bridge in the cluster needs it.
			this.broker.broadcast(EVENTS.agentUpdated, event);
			if (this.broker.cacher) void this.broker.cacher.clean("agents.**");
		},

		agentToken(this: AgentsThis, agent: StoredAgent) {
			return mintAgentToken(this.config.secrets.jwtSecret, agent, this.config.agentTokenTtlSec, this.config.jwt);
		}
	},

	created(this: AgentsThis) {
		this.config = appConfig(this.broker);
		this.egress = egressPolicy(this.config);
		this.actor = new EntityActor<StoredAgent>({ kind: "Agent", idField: "id", store: () => this.store, maxTries: 6 });
		// Every agent, sorted by name, as stored; what was heard of them since is in the liveness book.
		this.snapshot = new Snapshot(async () => (await this.store.find()).sort(byName), LIST_MAX_AGE_MS);
	}
};

export default AgentsService;
