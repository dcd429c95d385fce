/**
 * An agent's registry record as a decider: what a registration, a heartbeat, a health poll, a
 * silence, a drain, a node leaving or a dispatcher's load report makes of it, and whether the
 * change is news for the cluster (`announce`: status or load changed; a plain heartbeat is not).
 * Pure: the clock and the limits come in through the event and the context.
 */
import { actsOnOwnAgent } from "../access";
import { change, noChange, reject, type Decision, type Rejection } from "../decision";
import type { Agent, AgentHeartbeat, AgentRegistration, AgentStatus, Principal } from "../../types";
import { isSilent, statusAfterHealthCheck, statusAfterHeartbeat, statusAfterRegistration, statusAfterSilence } from "./status";

/** The stored record: the wire agent plus its compare-and-set version. */
export type StoredAgent = Agent & { version: number };

export type AgentEvent =
	| { type: "heartbeat"; report: AgentHeartbeat; by?: Principal }
	/** No heartbeat within `timeoutMs`. */
	| { type: "silence"; timeoutMs: number }
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

function withStatus(agent: StoredAgent, status: AgentStatus, ctx: AgentContext, extra: Partial<StoredAgent> = {}): AgentDecision {
	if (agent.status === status) return noChange();
	return change({ status, updated_at: ctx.now.toISOString(), ...extra }, [{ type: "announce", previous: agent.status }]);
}

export interface RegistrationContext extends AgentContext {
	id: string;
	/** Agents now alive in the registry (offline ones do not count). */
	liveAgents: number;
	maxAgents: number;
}

/**
 * A registration: a new record, or the existing one (same name, same id) updated. Coming back
 * from offline, or appearing new, needs room under MAX_AGENTS.
 */
export function decideRegistration(existing: StoredAgent | null, reg: AgentRegistration, ctx: RegistrationContext): { record: StoredAgent } | { reject: Rejection } {
	if ((!existing || existing.status === "offline") && ctx.liveAgents >= ctx.maxAgents)
		return { reject: { code: "CONFLICT", message: `Agent limit reached (MAX_AGENTS=${ctx.maxAgents})`, details: { max_agents: ctx.maxAgents } } };
	const now = ctx.now.toISOString();
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
	if (existing) return { record: { ...existing, ...fields } };
	return { record: { id: ctx.id, ...fields, current_load: 0, running_tasks: 0, registered_at: now, version: 1 } };
}

export function decideAgent(agent: StoredAgent, event: AgentEvent, ctx: AgentContext): AgentDecision {
	const now = ctx.now.toISOString();
	switch (event.type) {
		case "heartbeat": {
			if (event.by && !actsOnOwnAgent(event.by, agent.id)) return reject("FORBIDDEN", "An agent may only heartbeat as itself");
			const { status, current_load } = event.report;
			const next = statusAfterHeartbeat(agent.status, status);
			const news = next !== agent.status || (current_load !== undefined && current_load !== agent.current_load);
			return change(
				{ status: next, last_heartbeat: now, updated_at: now, ...(current_load !== undefined ? { current_load } : {}) },
				news ? [{ type: "announce", previous: agent.status }] : []
			);
		}
		case "silence": {
			const next = isSilent(agent.last_heartbeat, ctx.now.getTime(), event.timeoutMs) ? statusAfterSilence(agent.status) : null;
			return next ? withStatus(agent, next, ctx) : noChange();
		}
		case "health": {
			const next = statusAfterHealthCheck(agent.status, event.healthy);
			// A healthy answer is as good as a heartbeat: HTTP agents need not send both.
			const heard = event.healthy ? { last_heartbeat: now } : {};
			if (next) return withStatus(agent, next, ctx, heard);
			return event.healthy ? change(heard) : noChange();
		}
		case "drain":
			return withStatus(agent, "draining", ctx);
		case "node-left":
			return withStatus(agent, "offline", ctx);
		case "load": {
			const running_by_node = { ...agent.running_by_node, [event.node_id]: event.running_tasks };
			if (!event.running_tasks) delete running_by_node[event.node_id];
			const running_tasks = Object.values(running_by_node).reduce((sum, n) => sum + n, 0);
			return change({ running_by_node, running_tasks }, [{ type: "announce", previous: agent.status }]);
		}
	}
}
