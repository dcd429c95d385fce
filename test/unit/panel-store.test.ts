/** The panel's store logic without a browser: live events applied to rows and agents, seq gaps, reconnect backoff. */
import type { Agent, AgentUpdateMessage, Task, TaskUpdateMessage } from "../../src/types";
import { addTasks, applyAgentUpdate, applyTaskUpdates, reconnectDelay, SeqTracker, taskRows } from "../../web/src/store/reducers";

function task(id: string, overrides: Partial<Task> = {}): Task {
	return {
		task_id: id, created_by: null, pipeline_id: null, run_id: null, stage: null, type: "analysis", payload: {}, priority: "medium",
		timeout: 60, retry_count: 0, required_capabilities: [], status: "pending", progress: 0, assigned_agent: null, attempt: 0,
		result: null, error: null, logs: [], idempotency_key: null, created_at: "2026-01-01T00:00:00.000Z", started_at: null,
		updated_at: "2026-01-01T00:00:00.000Z", finished_at: null, next_attempt_at: null, ...overrides
	};
}

function update(id: string, fields: Partial<TaskUpdateMessage> = {}): TaskUpdateMessage {
	return { type: "task_update", task_id: id, pipeline_id: null, run_id: null, assigned_agent: "a1", status: "running", progress: 0.5, timestamp: "2026-01-01T00:00:05.000Z", ...fields };
}

describe("SeqTracker", () => {
	test("consecutive numbers are no gap; a skipped or repeated number is", () => {
		const seq = new SeqTracker();
		expect([1, 2, 3].map(n => seq.observe(n))).toEqual([false, false, false]);
		expect(seq.observe(5)).toBe(true);
		expect(seq.observe(6)).toBe(false);
		expect(seq.observe(6)).toBe(true);
	});

	test("the first event of a connection starts the count, wherever it is; events without seq are not judged", () => {
		const seq = new SeqTracker();
		expect(seq.observe(41)).toBe(false);
		expect(seq.observe(undefined)).toBe(false);
		expect(seq.observe(42)).toBe(false);
		seq.reset();
		expect(seq.observe(7)).toBe(false);
		expect(seq.observe(8)).toBe(false);
	});
});

describe("applyTaskUpdates", () => {
	test("patches the rows it holds, keeps the others, and names the tasks it does not hold", () => {
		const current = taskRows([task("t1"), task("t2")]);
		const { next, unknown } = applyTaskUpdates(current, [update("t2"), update("t9")]);
		expect(next.rows[0]).toBe(current.rows[0]);
		expect(next.rows[1]).toMatchObject({ task_id: "t2", status: "running", progress: 0.5, assigned_agent: "a1", updated_at: "2026-01-01T00:00:05.000Z" });
		expect(current.rows[1].status).toBe("pending");
		expect(unknown).toEqual(["t9"]);
	});

	test("the last event of a task in a batch wins; nothing changed means the same object", () => {
		const current = taskRows([task("t1")]);
		const { next } = applyTaskUpdates(current, [update("t1", { progress: 0.2 }), update("t1", { status: "completed", progress: 1 })]);
		expect(next.rows[0]).toMatchObject({ status: "completed", progress: 1 });
		const again = applyTaskUpdates(next, [update("t1", { status: "completed", progress: 1 })]);
		expect(again.next).toBe(next);
	});

	test("a batch over 10,000 rows stays well under a frame", () => {
		const current = taskRows(Array.from({ length: 10_000 }, (_, i) => task(`t${i}`)));
		const batch = Array.from({ length: 500 }, (_, i) => update(`t${i * 20}`));
		const started = performance.now();
		const { next } = applyTaskUpdates(current, batch);
		expect(performance.now() - started).toBeLessThan(50);
		expect(next.rows.filter(t => t.status === "running")).toHaveLength(500);
	});
});

describe("addTasks", () => {
	test("new tasks go first, newest first; known ones are replaced in place; the limit holds", () => {
		const current = taskRows([task("t1", { created_at: "2026-01-01T00:00:01.000Z" })]);
		const next = addTasks(current, [
			task("t2", { created_at: "2026-01-01T00:00:02.000Z" }),
			task("t3", { created_at: "2026-01-01T00:00:03.000Z" }),
			task("t1", { status: "failed" })
		], 2);
		expect(next.rows.map(t => t.task_id)).toEqual(["t3", "t2"]);
		expect(next.index.get("t2")).toBe(1);
		const replaced = addTasks(current, [task("t1", { status: "failed" })], 10);
		expect(replaced.rows[0].status).toBe("failed");
	});
});

describe("applyAgentUpdate", () => {
	const agent = { id: "a1", name: "w1", status: "active", current_load: 0, last_heartbeat: "2026-01-01T00:00:00.000Z" } as Agent;
	const message: AgentUpdateMessage = { type: "agent_update", agent_id: "a1", status: "offline", current_load: 0.25, timestamp: "2026-01-01T00:01:00.000Z" };

	test("status and load follow the event; the heartbeat stays the one the server saw", () => {
		const { agents, unknown } = applyAgentUpdate([agent], message);
		expect(unknown).toBe(false);
		expect(agents[0]).toMatchObject({ status: "offline", current_load: 0.25, last_heartbeat: agent.last_heartbeat });
	});

	test("an agent not held asks for the list again", () => {
		expect(applyAgentUpdate([agent], { ...message, agent_id: "a2" })).toEqual({ agents: [agent], unknown: true });
	});
});

describe("reconnectDelay", () => {
	test("grows exponentially from half a second, with jitter, and is capped at 15 s", () => {
		expect(reconnectDelay(0, () => 0)).toBe(250);
		expect(reconnectDelay(0, () => 1)).toBe(500);
		expect(reconnectDelay(3, () => 1)).toBe(4000);
		expect(reconnectDelay(50, () => 1)).toBe(15_000);
		expect(reconnectDelay(50, () => 0)).toBe(7500);
	});
});
