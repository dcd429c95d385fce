/**
 * An agent's registry record as a decider: what a registration, a heartbeat, a health poll, a
 * silence, a drain, a node leaving or a dispatcher's load report makes of it, and whether the
 * change is news for the cluster (`announce`: status or load changed; a plain heartbeat is not).
 * Pure: the clock, the limits and the caller come in through the event and the context.
 *
 * Liveness is not a write. A heartbeat that changes no status decides nothing: the registry keeps
 * when it heard each agent, and the load it reported, in memory (src/runtime/liveness.ts), and the
 * record's `last_heartbeat` is brought up to date only with a status change, as Nomad keeps its
 * heartbeat timers. A silence is judged on the later of the two.
 *
 * Identity: an agent's tokens name its registration (`rat`, its `registered_at`). A name that is
 * registered and alive can be taken over only by its own token or an operator; a removed or
 * re-claimed agent gets a new `registered_at`, and every token of the old one stops working.
 */
import { createHash } from "node:crypto";
import { actsOnOwnAgent, isAgentOnly } from "../access";
import { change, noChange, reject, type Decision, type Rejection } from "../decision";
import type { Agent, AgentHeartbeat, AgentRegistration, AgentStatus, Principal } from "../../types";
import { isSilent, statusAfterHealthCheck, statusAfterHeartbeat, statusAfterRegistration, statusAfterSilence } from "./status";

/** The stored record: the wire agent plus its compare-and-set version and the operator's drain. */
export type StoredAgent = Agent & {
	version: number;
	/** An operator drained it: it stays draining through silences and registrations. */
	drained?: boolean;
};

export type AgentEvent =
	| { type: "heartbeat"; report: AgentHeartbeat; by?: Principal }
	/** No heartbeat within `timeoutMs` of the last one heard (`lastHeardAt`, ms, from memory; 0 if none). */
	| { type: "silence"; timeoutMs: number; lastHeardAt: number }
	/** The outcome of polling its `endpoints.health`. */
	| { type: "health"; healthy: boolean }
	| { type: "drain" }
	/** Its Moleculer node left the cluster. */
	| { type: "node-left" }
	/** A core node runs `running_tasks` tasks on it now. */
	| { type: "load"; node_id: string; running_tasks: number };

export type AgentEffect = { type: "announce"; previous: AgentStatus };

export type AgentDecision = Decision<StoredAgent, AgentEffect>;

export interface AgentContext {
	now: Date;
}

/** Same name → same id, on every node, without a lookup: registration stays idempotent under races. */
export function agentIdFor(name: string): string {
	return `agent-${createHash("sha256").update(name).digest("hex").slice(0, 16)}`;
}

/** The public shape: the version and the drain flag stay inside. */
export function agentToWire(agent: StoredAgent): Agent {
	const { version: _version, drained: _drained, ...wire } = agent;
	return wire;
}

/** Is `by` an agent token of exactly this registration of the agent? */
export function isOwnCurrentToken(by: Principal, agent: Pick<Agent, "id" | "registered_at">): boolean {
	return by.roles.includes("agent") && by.agent_id === agent.id && by.rat === agent.registered_at;
}

/**
 * What an agent token may register: only its own agent, and only while it is of the registration
 * stored now (which it then keeps). Another name is refused, and so is bringing back a removed or
 * re-claimed agent: that is the API key's, as a new registration. Null: not an agent token, or allowed.
 */
export function agentTokenRegistration(by: Principal | null, existing: Pick<Agent, "id" | "registered_at"> | null, id: string): Rejection | null {
	if (!by || !isAgentOnly(by)) return null;
	if (by.agent_id !== id) return { code: "FORBIDDEN", message: "An agent token may only re-register its own agent" };
	if (!existing || !isOwnCurrentToken(by, existing))
		return { code: "UNAUTHORIZED", message: "This agent token belongs to a removed or earlier registration; register again with the API key" };
	return null;
}

/** An agent token that is not (or no longer) this registration's: refused as revoked. */
function revoked(by: Principal | undefined, agent: StoredAgent): boolean {
	return Boolean(by && isAgentOnly(by) && by.agent_id === agent.id && by.rat !== agent.registered_at);
}

/** `extra` is written in any case; `withChange` only along with a new status. */
function withStatus(agent: StoredAgent, status: AgentStatus, ctx: AgentContext, extra: Partial<StoredAgent> = {}, withChange: Partial<StoredAgent> = {}): AgentDecision {
	if (agent.status === status) return Object.keys(extra).length ? change(extra) : noChange();
	return change({ status, updated_at: ctx.now.toISOString(), ...withChange, ...extra }, [{ type: "announce", previous: agent.status }]);
}

export interface RegistrationContext extends AgentContext {
	id: string;
	/** Agents in the registry now, offline ones included (MAX_AGENTS bounds what is stored). */
	storedAgents: number;
	maxAgents: number;
	/** Who registers: the API key, an agent token, or a user. */
	by: Principal | null;
}

/**
 * A registration: a new record, or the existing one (same name, same id) updated. A new agent
 * needs room under MAX_AGENTS. A live agent's name needs its own token or an operator; the API
 * key alone may re-claim a name only once its agent is offline (then it holds no task), and that
 * starts a new registration, so the old agent's tokens stop working.
 */
export function decideRegistration(existing: StoredAgent | null, reg: AgentRegistration, ctx: RegistrationContext): { record: StoredAgent } | { reject: Rejection } {
	const now = ctx.now.toISOString();
	if (!existing && ctx.storedAgents >= ctx.maxAgents)
		return { reject: { code: "CONFLICT", message: `Agent limit reached (MAX_AGENTS=${ctx.maxAgents})`, details: { max_agents: ctx.maxAgents } } };
	const own = ctx.by !== null && existing !== null && isOwnCurrentToken(ctx.by, existing);
	const operator = ctx.by !== null && ctx.by.roles.some(role => role === "operator" || role === "admin" || role === "system");
	if (existing && existing.status !== "offline" && !own && !operator)
		return {
			reject: {
				code: "CONFLICT",
				message: `Agent '${reg.name}' is registered and alive: re-registering it needs its own token or an operator's`,
				details: { id: existing.id, status: existing.status }
			}
		};
	const fields = {
		name: reg.name,
		type: reg.type,
		status: statusAfterRegistration(existing?.status, existing?.drained),
		capabilities: [...new Set(reg.capabilities)],
		endpoints: reg.endpoints ?? {},
		resources: reg.resources ?? {},
		node_id: reg.node_id ?? null,
		service: reg.service ?? null,
		last_heartbeat: now,
		updated_at: now
	};
	// Its own token or an operator keeps the registration; anyone else starts a new one.
	if (existing) return { record: { ...existing, ...fields, registered_at: own || operator ? existing.registered_at : now } };
	return { record: { id: ctx.id, ...fields, current_load: 0, running_tasks: 0, registered_at: now, version: 1 } };
}

/** When the agent was last heard: the stored `last_heartbeat` or, if later, what the registry heard since (ms). */
export function lastHeardAt(agent: Pick<Agent, "last_heartbeat">, heardAt = 0): number {
	return Math.max(Date.parse(agent.last_heartbeat) || 0, heardAt);
}

/** Offline for longer than the retention: the record goes. */
export function isExpired(agent: Pick<Agent, "status" | "last_heartbeat">, now: number, retentionMs: number): boolean {
	return agent.status === "offline" && now - Date.parse(agent.last_heartbeat) > retentionMs;
}

export function decideAgent(agent: StoredAgent, event: AgentEvent, ctx: AgentContext): AgentDecision {
	const now = ctx.now.toISOString();
	switch (event.type) {
		case "heartbeat": {
			if (revoked(event.by, agent)) return reject("UNAUTHORIZED", "This agent token belongs to an earlier registration; register again");
			if (event.by && !actsOnOwnAgent(event.by, agent.id)) return reject("FORBIDDEN", "An agent may only heartbeat as itself");
			// Only a new status is written; the beat itself (and its load) is liveness, kept in memory.
			return withStatus(agent, statusAfterHeartbeat(agent.status, event.report.status, agent.drained), ctx, {}, { last_heartbeat: now });
		}
		case "silence": {
			const heard = lastHeardAt(agent, event.lastHeardAt);
			const next = isSilent(heard, ctx.now.getTime(), event.timeoutMs) ? statusAfterSilence(agent.status) : null;
			return next ? withStatus(agent, next, ctx, {}, { last_heartbeat: new Date(heard).toISOString() }) : noChange();
		}
		case "health": {
			const next = statusAfterHealthCheck(agent.status, event.healthy, agent.drained);
			// A healthy answer is as good as a heartbeat (HTTP agents need not send both): liveness, written with a new status.
			return next ? withStatus(agent, next, ctx, {}, event.healthy ? { last_heartbeat: now } : {}) : noChange();
		}
		case "drain":
			return agent.status === "draining" && agent.drained ? noChange() : withStatus(agent, agent.status === "offline" ? "offline" : "draining", ctx, { drained: true });
		case "node-left":
			return withStatus(agent, "offline", ctx);
		case "load": {
			const running_by_node = { ...agent.running_by_node, [event.node_id]: event.running_tasks };
			if (!event.running_tasks) delete running_by_node[event.node_id];
			const running_tasks = Object.values(running_by_node).reduce((sum, n) => sum + n, 0);
			if (running_tasks === agent.running_tasks && (agent.running_by_node?.[event.node_id] ?? 0) === event.running_tasks) return noChange();
			return change({ running_by_node, running_tasks }, [{ type: "announce", previous: agent.status }]);
		}
	}
}
