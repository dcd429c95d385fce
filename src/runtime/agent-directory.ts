/** Every registered agent, page by page: `agents.list` answers at most a page at a time. */
import type { ServiceBroker } from "moleculer";
import type { Agent, AgentList } from "../types";

const PAGE = 1000;

export async function allAgents(broker: ServiceBroker, opts: { timeout?: number; retries?: number } = {}): Promise<Agent[]> {
	const agents: Agent[] = [];
	for (let offset = 0; ; offset += PAGE) {
		const page = await broker.call<AgentList, { limit: number; offset: number }>("agents.list", { limit: PAGE, offset }, opts);
		agents.push(...page.agents);
		if (page.agents.length < PAGE || agents.length >= page.total) return agents;
	}
}
