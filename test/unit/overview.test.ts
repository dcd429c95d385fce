/** The Overview's capacity per capability: a queued type that only `task-execution` agents serve is not shown as unserved. */
import { overview } from "../../src/platform/metrics/overview";
import type { Agent, TaskStatus } from "../../src/types";

const byStatus = { pending: 3, running: 1, completed: 0, failed: 0, cancelled: 0, retrying: 0 } as Record<TaskStatus, number>;

function agent(id: string, capabilities: string[], status: Agent["status"] = "active", running = 0): Agent {
	return {
		id, name: id, type: "worker", status, capabilities, endpoints: {}, resources: { cpu: 2 }, node_id: null, service: null,
		current_load: 0, running_tasks: running, last_heartbeat: "2026-01-01T00:00:00.000Z", registered_at: "2026-01-01T00:00:00.000Z", updated_at: "2026-01-01T00:00:00.000Z"
	};
}

test("a queued type is served by task-execution agents; a required capability nobody has stays unserved", () => {
	const result = overview(byStatus, [agent("g", ["task-execution"], "active", 1), agent("c", ["csv"])], { depth: 3, by_capability: { "etl": 2, "gpu": 1, "csv": 1 }, types: ["etl", "csv"] }, null, []);
	expect(result.agents.by_capability.etl).toEqual({ agents: 1, live: 1, slots: 2, used: 1, queued: 2 });
	expect(result.agents.by_capability.gpu).toEqual({ agents: 0, live: 0, slots: 0, used: 0, queued: 1 });
	expect(result.agents.by_capability.csv).toEqual({ agents: 1, live: 1, slots: 2, used: 0, queued: 1 });
	expect(result.agents.by_capability["task-execution"]).toEqual({ agents: 1, live: 1, slots: 2, used: 1, queued: 0 });
});

test("without task-execution agents a queued type nobody lists shows no live agent", () => {
	const result = overview(byStatus, [agent("c", ["csv"])], { depth: 1, by_capability: { etl: 1 }, types: ["etl"] }, null, []);
	expect(result.agents.by_capability.etl).toEqual({ agents: 0, live: 0, slots: 0, used: 0, queued: 1 });
});
