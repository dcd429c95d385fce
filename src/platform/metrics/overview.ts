/**
 * The panel's Overview as one answer: tasks by status and queued per capability, agents online
 * against their capacity per capability (those with no live agent stand out), the runs' success
 * ratio and the task flow of the last minutes. Pure: the metrics service gathers the inputs.
 */
import { agentConcurrency, GENERIC_CAPABILITY } from "../../domain/tasks/dispatch";
import type { Agent, TaskStatus } from "../../types";
import type { HistoryPoint } from "./history";

/** Queued (pending or retrying) tasks per capability they need: their type, and each required capability. */
export interface QueueByCapability {
	depth: number;
	by_capability: Record<string, number>;
	/** The queued tasks' types (each also counted in `by_capability`): agents that take `task-execution` serve these. */
	types: string[];
}

export interface CapabilityCapacity {
	agents: number;
	/** Agents not offline. */
	live: number;
	slots: number;
	used: number;
	queued: number;
}

export interface Overview {
	tasks: { by_status: Record<TaskStatus, number>; queue_depth: number; by_capability: Record<string, { queued: number }> };
	agents: { online: number; total: number; slots: number; used: number; by_capability: Record<string, CapabilityCapacity> };
	runs: { success_ratio: number | null };
	history: HistoryPoint[];
}

export function overview(
	byStatus: Record<TaskStatus, number>,
	agents: readonly Agent[],
	queue: QueueByCapability,
	successRatio: number | null,
	history: HistoryPoint[]
): Overview {
	const live = agents.filter(a => a.status !== "offline");
	const capacity: Record<string, CapabilityCapacity> = {};
	const entry = (capability: string) => (capacity[capability] ??= { agents: 0, live: 0, slots: 0, used: 0, queued: 0 });
	for (const agent of agents)
		for (const capability of new Set(agent.capabilities)) {
			const c = entry(capability);
			c.agents++;
			if (agent.status === "offline") continue;
			c.live++;
			c.slots += agentConcurrency(agent);
			c.used += agent.running_tasks;
		}
	// A capability tasks wait for but no agent has: it must show, with no live agent, unless it is a
	// task type and `task-execution` agents (which take any type) serve it.
	const generic = capacity[GENERIC_CAPABILITY];
	const types = new Set(queue.types);
	for (const [capability, queued] of Object.entries(queue.by_capability)) {
		const c = capacity[capability] ?? (generic && types.has(capability) ? (capacity[capability] = { ...generic }) : entry(capability));
		c.queued = queued;
	}
	return {
		tasks: {
			by_status: byStatus,
			queue_depth: queue.depth,
			by_capability: Object.fromEntries(Object.entries(queue.by_capability).map(([capability, queued]) => [capability, { queued }]))
		},
		agents: {
			online: live.length,
			total: agents.length,
			slots: live.reduce((sum, a) => sum + agentConcurrency(a), 0),
			used: live.reduce((sum, a) => sum + a.running_tasks, 0),
			by_capability: capacity
		},
		runs: { success_ratio: successRatio },
		history
	};
}
