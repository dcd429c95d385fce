/**
 * Agents by status from `agent.updated` events, which carry the whole agent (and `removed` on
 * deregistration), plus a seed from `agents.list` for agents registered before this node started.
 * Events only update the map (the dispatcher's load reports make several a second); the gauge is
 * read from it on a timer (`gauges()`).
 */
import { AGENT_STATUSES, type Agent, type AgentStatus, type AgentUpdatedEvent } from "../../types";
import { MCP_METRIC } from "./definitions";
import type { MetricUpdate } from "./updates";

export class AgentFigures {
	private readonly statusById = new Map<string, AgentStatus>();
	/** Agents an event told us about: newer than any list, so a seed never overrides them. */
	private readonly heardOf = new Set<string>();

	onAgentUpdated(event: Pick<AgentUpdatedEvent, "removed"> & { agent: Pick<Agent, "id" | "status"> }): void {
		const { agent, removed } = event;
		this.heardOf.add(agent.id);
		if (removed) this.statusById.delete(agent.id);
		else this.statusById.set(agent.id, agent.status);
	}

	/** Agents from a list taken at start. */
	seed(agents: ReadonlyArray<Pick<Agent, "id" | "status">>): void {
		for (const agent of agents) if (!this.heardOf.has(agent.id)) this.statusById.set(agent.id, agent.status);
	}

	count(status: AgentStatus): number {
		let n = 0;
		for (const s of this.statusById.values()) if (s === status) n++;
		return n;
	}

	/** Agents by status, every status included. */
	gauges(): MetricUpdate[] {
		const counts = new Map<AgentStatus, number>(AGENT_STATUSES.map(s => [s, 0]));
		for (const s of this.statusById.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
		return AGENT_STATUSES.map(status => ({ op: "set", name: MCP_METRIC.agents, labels: { status }, value: counts.get(status) ?? 0 }));
	}
}
