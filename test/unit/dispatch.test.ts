import {
	agentConcurrency,
	canTake,
	compareAgentPreference,
	compareQueueOrder,
	GENERIC_CAPABILITY,
	planDispatch,
	PRIORITY_RANK,
	type Assignment,
	type DispatchAgent,
	type DispatchInput,
	type DispatchTask
} from "../../src/domain/tasks/dispatch";
import type { AgentStatus, Priority } from "../../src/types";
import { seeded } from "../support/seeded-random";

const NOW = 1_700_000_000_000;
let nextSeq = 0;

function task(task_id: string, overrides: Partial<DispatchTask> = {}): DispatchTask {
	nextSeq++;
	return {
		task_id,
		type: "analysis",
		priority: "medium",
		required_capabilities: [],
		created_at: NOW - 1_000_000 + nextSeq,
		...overrides
	};
}

function agent(id: string, overrides: Partial<DispatchAgent> = {}): DispatchAgent {
	return {
		id,
		status: "active",
		capabilities: [GENERIC_CAPABILITY],
		resources: { cpu: 1 },
		current_load: 0,
		running_tasks: 0,
		...overrides
	};
}

function plan(tasks: DispatchTask[], agents: DispatchAgent[], extra: Partial<DispatchInput> = {}): Assignment[] {
	return planDispatch({ tasks, agents, runningTotal: 0, maxConcurrentTasks: 1_000_000, now: NOW, ...extra });
}

const asMap = (assignments: Assignment[]) => Object.fromEntries(assignments.map(a => [a.task_id, a.agent_id]));


/**
 * The policy as the contract states it, the slow obvious way: for each task in queue order, scan
 * every agent. Written without the module's helpers so the two can disagree.
 */
function referencePlan(input: DispatchInput): Assignment[] {
	const rank: Record<string, number> = { high: 0, medium: 1, low: 2 };
	const time = (t: DispatchTask) => (typeof t.created_at === "number" ? t.created_at : Date.parse(t.created_at));
	const queue = input.tasks
		.filter(t => t.not_before == null || t.not_before <= input.now)
		.sort(
			(a, b) =>
				rank[a.priority] - rank[b.priority] ||
				time(a) - time(b) ||
				(a.seq ?? 0) - (b.seq ?? 0) ||
				(a.task_id < b.task_id ? -1 : a.task_id > b.task_id ? 1 : 0)
		);
	const running = new Map(input.agents.map(a => [a.id, a.running_tasks]));
	const limit = (a: DispatchAgent) => {
		const cpu = a.resources?.cpu;
		return typeof cpu === "number" && cpu >= 1 ? Math.floor(cpu) : 1;
	};
	let room = input.maxConcurrentTasks - input.runningTotal;
	const result: Assignment[] = [];
	for (const t of queue) {
		if (room <= 0) break;
		let best: DispatchAgent | undefined;
		for (const a of input.agents) {
			if (a.status !== "active" || a.skip || running.get(a.id)! >= limit(a)) continue;
			const caps = a.capabilities;
			if (!caps.includes(t.type) && !caps.includes("task-execution")) continue;
			if (!t.required_capabilities.every(c => caps.includes(c))) continue;
			if (
				!best ||
				a.current_load < best.current_load ||
				(a.current_load === best.current_load &&
					(running.get(a.id)! < running.get(best.id)! ||
						(running.get(a.id) === running.get(best.id) && a.id < best.id)))
			)
				best = a;
		}
		if (!best) continue;
		running.set(best.id, running.get(best.id)! + 1);
		room--;
		result.push({ task_id: t.task_id, agent_id: best.id });
	}
	return result;
}

/** Checks that hold for any plan, whatever the policy's preferences. */
function expectSound(input: DispatchInput, assignments: Assignment[]): void {
	const tasks = new Map(input.tasks.map(t => [t.task_id, t]));
	const agents = new Map(input.agents.map(a => [a.id, a]));
	expect(new Set(assignments.map(a => a.task_id)).size).toBe(assignments.length);
	expect(input.runningTotal + assignments.length).toBeLessThanOrEqual(Math.max(input.maxConcurrentTasks, input.runningTotal));
	const given = new Map<string, number>();
	for (const { task_id, agent_id } of assignments) {
		const t = tasks.get(task_id)!;
		const a = agents.get(agent_id)!;
		expect(canTake(a, t)).toBe(true);
		expect(t.not_before == null || t.not_before <= input.now).toBe(true);
		given.set(agent_id, (given.get(agent_id) ?? 0) + 1);
	}
	for (const [id, count] of given) {
		const a = agents.get(id)!;
		expect(a.running_tasks + count).toBeLessThanOrEqual(agentConcurrency(a));
	}
}

describe("agentConcurrency", () => {
	it("is resources.cpu, floored", () => {
		expect(agentConcurrency(agent("a", { resources: { cpu: 4 } }))).toBe(4);
		expect(agentConcurrency(agent("a", { resources: { cpu: 2.9 } }))).toBe(2);
	});

	it("is 1 when cpu is missing, below 1 or unreadable", () => {
		expect(agentConcurrency(agent("a", { resources: undefined }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: null }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: {} }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: { cpu: 0 } }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: { cpu: 0.5 } }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: { cpu: -3 } }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: { cpu: Number.NaN } }))).toBe(1);
		expect(agentConcurrency(agent("a", { resources: { cpu: "8" as unknown as number } }))).toBe(1);
	});
});

describe("canTake", () => {
	it("takes a task whose type is among its capabilities", () => {
		expect(canTake(agent("a", { capabilities: ["analysis"] }), task("t", { type: "analysis" }))).toBe(true);
		expect(canTake(agent("a", { capabilities: ["output"] }), task("t", { type: "analysis" }))).toBe(false);
	});

	it("takes any type with the generic task-execution capability", () => {
		expect(canTake(agent("a", { capabilities: ["task-execution"] }), task("t", { type: "whatever" }))).toBe(true);
	});

	it("needs every required capability, on top of the type", () => {
		const t = task("t", { type: "analysis", required_capabilities: ["gpu", "python"] });
		expect(canTake(agent("a", { capabilities: ["analysis", "gpu", "python"] }), t)).toBe(true);
		expect(canTake(agent("a", { capabilities: ["task-execution", "gpu", "python"] }), t)).toBe(true);
		expect(canTake(agent("a", { capabilities: ["analysis", "gpu"] }), t)).toBe(false);
		expect(canTake(agent("a", { capabilities: ["task-execution"] }), t)).toBe(false);
		// required capabilities alone do not make the agent fit for the type
		expect(canTake(agent("a", { capabilities: ["gpu", "python"] }), t)).toBe(false);
	});

	it.each<AgentStatus>(["busy", "draining", "offline", "unhealthy"])("refuses work while %s", status => {
		expect(canTake(agent("a", { status }), task("t"))).toBe(false);
	});

	it("refuses work when its circuit breaker is open", () => {
		expect(canTake(agent("a", { skip: true }), task("t"))).toBe(false);
		expect(canTake(agent("a", { skip: false }), task("t"))).toBe(true);
	});

	it("refuses work when running as many tasks as its concurrency", () => {
		expect(canTake(agent("a", { resources: { cpu: 2 }, running_tasks: 1 }), task("t"))).toBe(true);
		expect(canTake(agent("a", { resources: { cpu: 2 }, running_tasks: 2 }), task("t"))).toBe(false);
		expect(canTake(agent("a", { resources: {}, running_tasks: 1 }), task("t"))).toBe(false);
	});
});

describe("queue order", () => {
	it("ranks high before medium before low", () => {
		expect(PRIORITY_RANK).toEqual({ high: 0, medium: 1, low: 2 });
		const tasks = (["low", "medium", "high"] as Priority[]).map((priority, i) => task(`t${i}`, { priority }));
		expect([...tasks].sort(compareQueueOrder).map(t => t.priority)).toEqual(["high", "medium", "low"]);
	});

	it("is FIFO within a priority, by created_at as ISO time or epoch ms", () => {
		const late = task("a-late", { created_at: "2024-01-01T00:00:02.000Z" });
		const early = task("z-early", { created_at: "2024-01-01T00:00:01.000Z" });
		expect([late, early].sort(compareQueueOrder).map(t => t.task_id)).toEqual(["z-early", "a-late"]);
		expect([task("x", { created_at: 20 }), task("y", { created_at: 10 })].sort(compareQueueOrder)[0].task_id).toBe("y");
	});

	it("breaks created_at ties by seq, then by task id", () => {
		const at = "2024-01-01T00:00:00.000Z";
		const ordered = [
			task("b", { created_at: at, seq: 2 }),
			task("c", { created_at: at, seq: 1 }),
			task("a", { created_at: at, seq: 2 })
		].sort(compareQueueOrder);
		expect(ordered.map(t => t.task_id)).toEqual(["c", "a", "b"]);
	});

	it("puts tasks with an unreadable created_at last instead of scrambling the order", () => {
		const bad = task("bad", { created_at: "not a date" });
		const ordered = [bad, task("t1", { created_at: 2 }), task("t2", { created_at: 1 })].sort(compareQueueOrder);
		expect(ordered.map(t => t.task_id)).toEqual(["t2", "t1", "bad"]);
	});
});

describe("compareAgentPreference", () => {
	it("prefers least load, then fewest running tasks, then the smaller id", () => {
		const sorted = [
			agent("d", { current_load: 0.5, running_tasks: 0 }),
			agent("c", { current_load: 0.1, running_tasks: 2 }),
			agent("b", { current_load: 0.1, running_tasks: 1 }),
			agent("a", { current_load: 0.1, running_tasks: 1 })
		].sort(compareAgentPreference);
		expect(sorted.map(a => a.id)).toEqual(["a", "b", "c", "d"]);
	});
});

describe("planDispatch", () => {
	it("gives the only free slot to the highest priority task, however young", () => {
		const tasks = [task("low", { priority: "low" }), task("medium", { priority: "medium" }), task("high", { priority: "high" })];
		expect(plan(tasks, [agent("a")])).toEqual([{ task_id: "high", agent_id: "a" }]);
	});

	it("serves a priority FIFO", () => {
		const tasks = [
			task("second", { created_at: "2024-01-01T00:00:02.000Z" }),
			task("first", { created_at: "2024-01-01T00:00:01.000Z" }),
			task("third", { created_at: "2024-01-01T00:00:03.000Z" })
		];
		expect(plan(tasks, [agent("a", { resources: { cpu: 2 } })]).map(a => a.task_id)).toEqual(["first", "second"]);
	});

	it("lists its assignments in queue order", () => {
		const tasks = [task("l", { priority: "low" }), task("h", { priority: "high" }), task("m")];
		expect(plan(tasks, [agent("a", { resources: { cpu: 8 } })]).map(a => a.task_id)).toEqual(["h", "m", "l"]);
	});

	it("matches the task type, task-execution and required capabilities", () => {
		const agents = [
			agent("analyst", { capabilities: ["analysis"] }),
			agent("generalist", { capabilities: ["task-execution"], current_load: 0.9 }),
			agent("gpu", { capabilities: ["output", "gpu"] })
		];
		const tasks = [
			task("analysis", { type: "analysis" }),
			task("gpu-output", { type: "output", required_capabilities: ["gpu"] }),
			task("anything", { type: "transformation" })
		];
		expect(asMap(plan(tasks, agents))).toEqual({ analysis: "analyst", "gpu-output": "gpu", anything: "generalist" });
	});

	it("leaves a task waiting when no agent has every required capability", () => {
		const agents = [agent("a", { capabilities: ["analysis", "gpu"] }), agent("b", { capabilities: ["task-execution", "python"] })];
		expect(plan([task("t", { required_capabilities: ["gpu", "python"] })], agents)).toEqual([]);
	});

	it("picks the least loaded agent", () => {
		const agents = [agent("busy-ish", { current_load: 0.7 }), agent("idle", { current_load: 0.1 }), agent("mid", { current_load: 0.4 })];
		expect(plan([task("t")], agents)).toEqual([{ task_id: "t", agent_id: "idle" }]);
	});

	it("breaks a load tie by fewest running tasks, then by agent id", () => {
		const byRunning = [
			agent("a", { resources: { cpu: 4 }, running_tasks: 2 }),
			agent("b", { resources: { cpu: 4 }, running_tasks: 1 })
		];
		expect(plan([task("t")], byRunning)[0].agent_id).toBe("b");
		expect(plan([task("t")], [agent("b"), agent("a"), agent("c")])[0].agent_id).toBe("a");
	});

	it("prefers a less loaded agent even when it runs more tasks", () => {
		const agents = [
			agent("light", { current_load: 0.1, running_tasks: 3, resources: { cpu: 4 } }),
			agent("heavy", { current_load: 0.2 })
		];
		expect(plan([task("t")], agents)[0].agent_id).toBe("light");
	});

	it("ranks an agent with an unreadable load after every agent with a real one", () => {
		const agents = [agent("a", { current_load: Number.NaN }), agent("b", { current_load: 0.9 })];
		expect(plan([task("t")], agents)[0].agent_id).toBe("b");
	});

	it("fills an agent up to its resources.cpu within one batch", () => {
		const tasks = [task("t1"), task("t2"), task("t3")];
		expect(plan(tasks, [agent("a", { resources: { cpu: 2 } })])).toEqual([
			{ task_id: "t1", agent_id: "a" },
			{ task_id: "t2", agent_id: "a" }
		]);
	});

	it("counts the tasks an agent already runs against its concurrency", () => {
		const tasks = [task("t1"), task("t2")];
		expect(plan(tasks, [agent("a", { resources: { cpu: 2 }, running_tasks: 1 })]).map(a => a.task_id)).toEqual(["t1"]);
		expect(plan(tasks, [agent("a", { resources: { cpu: 2 }, running_tasks: 2 })])).toEqual([]);
	});

	it("floors a fractional cpu and treats a missing one as 1", () => {
		const tasks = [task("t1"), task("t2"), task("t3"), task("t4")];
		expect(plan(tasks, [agent("a", { resources: { cpu: 2.9 } })])).toHaveLength(2);
		expect(plan(tasks, [agent("a", { resources: undefined })])).toHaveLength(1);
	});

	it("spreads a batch by updating the simulated running count after each assignment", () => {
		const agents = [agent("a", { resources: { cpu: 2 } }), agent("b", { resources: { cpu: 2 } })];
		const tasks = [task("t1"), task("t2"), task("t3"), task("t4"), task("t5")];
		expect(plan(tasks, agents).map(a => a.agent_id)).toEqual(["a", "b", "a", "b"]);
	});

	it("sees an assignment made for one kind of task when placing another kind", () => {
		// "a" serves both types, so picks made for one type must count when the other type looks at it
		// (o3 must go to "c": "a" already runs two tasks by then, "c" one).
		const agents = [
			agent("a", { capabilities: ["analysis", "output"], resources: { cpu: 3 } }),
			agent("b", { capabilities: ["analysis"], resources: { cpu: 3 } }),
			agent("c", { capabilities: ["output"], resources: { cpu: 3 } })
		];
		const order = ["o1", "a1", "a2", "o2", "o3", "a3", "o4", "a4", "o5", "a5", "o6"];
		const tasks = order.map(id => task(id, { type: id.startsWith("o") ? "output" : "analysis" }));
		expect(plan(tasks, agents).map(a => `${a.task_id}:${a.agent_id}`)).toEqual([
			"o1:a",
			"a1:b",
			"a2:a",
			"o2:c",
			"o3:c",
			"a3:b",
			"o4:a",
			"a4:b",
			"o5:c"
		]);
	});

	it("stops at the cluster cap, serving the highest priorities", () => {
		const tasks = [task("l1", { priority: "low" }), task("h1", { priority: "high" }), task("m1"), task("h2", { priority: "high" })];
		const agents = Array.from({ length: 10 }, (_, i) => agent(`a${i}`));
		const assignments = plan(tasks, agents, { runningTotal: 7, maxConcurrentTasks: 10 });
		expect(assignments.map(a => a.task_id)).toEqual(["h1", "h2", "m1"]);
	});

	it("assigns nothing when the cluster is at or over its cap", () => {
		const agents = [agent("a", { resources: { cpu: 4 } })];
		expect(plan([task("t")], agents, { runningTotal: 5, maxConcurrentTasks: 5 })).toEqual([]);
		expect(plan([task("t")], agents, { runningTotal: 9, maxConcurrentTasks: 5 })).toEqual([]);
	});

	it("does not let a task nobody can take block the tasks behind it", () => {
		const tasks = [
			task("gpu-first", { priority: "high", required_capabilities: ["gpu"] }),
			task("unknown-type", { priority: "high", type: "quantum" }),
			task("plain", { priority: "low", type: "analysis" })
		];
		const agents = [agent("a", { capabilities: ["analysis"] })];
		expect(plan(tasks, agents)).toEqual([{ task_id: "plain", agent_id: "a" }]);
	});

	it("does not let a task whose only capable agent is full block the others", () => {
		const agents = [
			agent("gpu", { capabilities: ["task-execution", "gpu"], running_tasks: 1 }),
			agent("cpu", { capabilities: ["task-execution"] })
		];
		const tasks = [task("needs-gpu", { priority: "high", required_capabilities: ["gpu"] }), task("any", { priority: "low" })];
		expect(plan(tasks, agents)).toEqual([{ task_id: "any", agent_id: "cpu" }]);
	});

	it("waits out not_before: future is held, now and past are eligible", () => {
		const tasks = [
			task("future", { priority: "high", not_before: NOW + 1 }),
			task("now", { not_before: NOW }),
			task("past", { not_before: NOW - 5000 }),
			task("none", { not_before: null })
		];
		const assignments = plan(tasks, [agent("a", { resources: { cpu: 10 } })]);
		expect(assignments.map(a => a.task_id).sort()).toEqual(["none", "now", "past"]);
	});

	it("gives nothing to an agent whose circuit breaker is open, even the least loaded", () => {
		const agents = [agent("broken", { skip: true, current_load: 0 }), agent("ok", { current_load: 0.9 })];
		expect(plan([task("t1"), task("t2")], agents)).toEqual([{ task_id: "t1", agent_id: "ok" }]);
	});

	it.each<AgentStatus>(["busy", "draining", "offline", "unhealthy"])("gives nothing to a %s agent", status => {
		expect(plan([task("t")], [agent("a", { status, resources: { cpu: 4 } })])).toEqual([]);
		const agents = [agent("a", { status }), agent("z", { current_load: 0.9 })];
		expect(plan([task("t")], agents)).toEqual([{ task_id: "t", agent_id: "z" }]);
	});

	it("returns nothing for an empty queue or no agents", () => {
		expect(plan([], [agent("a")])).toEqual([]);
		expect(plan([task("t")], [])).toEqual([]);
	});

	it("leaves its inputs untouched", () => {
		const agents = [agent("a", { resources: { cpu: 3 } })];
		const tasks = [task("t2", { priority: "low" }), task("t1", { priority: "high" })];
		const before = JSON.stringify({ agents, tasks });
		plan(tasks, agents);
		expect(JSON.stringify({ agents, tasks })).toBe(before);
	});

	it("treats the same required capabilities in any order or repeated as one requirement", () => {
		const agents = [agent("a", { capabilities: ["task-execution", "x", "y"], resources: { cpu: 3 } })];
		const tasks = [
			task("t1", { required_capabilities: ["x", "y"] }),
			task("t2", { required_capabilities: ["y", "x"] }),
			task("t3", { required_capabilities: ["x", "x", "y"] })
		];
		expect(plan(tasks, agents)).toHaveLength(3);
	});

	it("agrees with the obvious O(tasks × agents) policy on random clusters", () => {
		const random = seeded(2024);
		const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
		const types = ["analysis", "output", "validation", "processing"];
		const extras = ["gpu", "python", "ssd"];
		const statuses: AgentStatus[] = ["active", "active", "active", "busy", "draining", "offline", "unhealthy"];
		for (let round = 0; round < 300; round++) {
			const agents = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, i) =>
				agent(`a${Math.floor(random() * 1000)}-${i}`, {
					status: pick(statuses),
					capabilities: [
						...types.filter(() => random() < 0.3),
						...(random() < 0.3 ? [GENERIC_CAPABILITY] : []),
						...extras.filter(() => random() < 0.4)
					],
					resources: random() < 0.2 ? undefined : { cpu: random() * 4 },
					// few distinct loads, so the running-count and id tie-breaks get exercised
					current_load: pick([0, 0.25, 0.5]),
					running_tasks: Math.floor(random() * 3),
					skip: random() < 0.1
				})
			);
			const tasks = Array.from({ length: Math.floor(random() * 40) }, (_, i) =>
				task(`t${i}`, {
					type: pick(types),
					priority: pick(["high", "medium", "low"] as Priority[]),
					required_capabilities: extras.filter(() => random() < 0.2),
					created_at: Math.floor(random() * 20),
					seq: Math.floor(random() * 3),
					not_before: random() < 0.2 ? NOW + pick([-1, 0, 1]) : undefined
				})
			);
			const input: DispatchInput = {
				tasks,
				agents,
				runningTotal: Math.floor(random() * 5),
				maxConcurrentTasks: 1 + Math.floor(random() * 30),
				now: NOW
			};
			const assignments = planDispatch(input);
			expectSound(input, assignments);
			expect(assignments).toEqual(referencePlan(input));
		}
	});

	it("plans 10,000 tasks over 2,000 agents correctly", () => {
		const random = seeded(10_000);
		const types = ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"];
		const extras = ["gpu", "python", "ssd", "large-memory"];
		const agents = Array.from({ length: 2000 }, (_, i) =>
			agent(`agent-${String(i).padStart(4, "0")}`, {
				status: random() < 0.85 ? "active" : "busy",
				capabilities: [
					...types.filter(() => random() < 0.25),
					...(random() < 0.1 ? [GENERIC_CAPABILITY] : []),
					...extras.filter(() => random() < 0.3)
				],
				resources: { cpu: 1 + Math.floor(random() * 4) },
				current_load: Math.round(random() * 10) / 10,
				running_tasks: Math.floor(random() * 2),
				skip: random() < 0.05
			})
		);
		const tasks = Array.from({ length: 10_000 }, (_, i) =>
			task(`task-${i}`, {
				type: types[i % types.length],
				priority: (["high", "medium", "low"] as Priority[])[Math.floor(random() * 3)],
				required_capabilities: extras.filter(() => random() < 0.15),
				created_at: new Date(NOW - 100_000 + Math.floor(random() * 50_000)).toISOString(),
				seq: i,
				not_before: random() < 0.1 ? NOW + 60_000 : undefined
			})
		);
		const input: DispatchInput = { tasks, agents, runningTotal: 300, maxConcurrentTasks: 3000, now: NOW };

		const assignments = planDispatch(input);

		expectSound(input, assignments);
		expect(assignments).toEqual(referencePlan(input));
		// the cluster cap, not the agents, is what binds here: a meaningful amount of work got placed
		expect(assignments).toHaveLength(2700);
		// the cap cut the queue by priority: high tasks were placed, and more of them than of low ones
		const placedByPriority = { high: 0, medium: 0, low: 0 };
		for (const { task_id } of assignments) placedByPriority[tasks[Number(task_id.slice("task-".length))].priority]++;
		expect(placedByPriority.high).toBeGreaterThan(placedByPriority.low);
	});
});
