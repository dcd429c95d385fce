/**
 * The task decider through its exported API: every event in every status, then the rules the
 * table cannot show in one cell (attempt numbers, access, retries and backoff, re-queues, logs,
 * newTask). The expected outcomes are written out here, not derived from the module.
 */
import {
	decideTask,
	MAX_TASK_LOGS,
	newTask,
	type TaskContext,
	type TaskDecision,
	type TaskEffect,
	type TaskEvent,
	type TaskFailure
} from "../../src/domain/tasks/decide";
import type { BackoffOptions } from "../../src/domain/backoff";
import { TASK_STATUSES, type LogLevelName, type Principal, type Task, type TaskStatus } from "../../src/types";

const NOW = new Date("2030-01-02T03:04:05.000Z");
const NOW_ISO = "2030-01-02T03:04:05.000Z";
const NOW_MS = Date.parse(NOW_ISO);
const CREATED = "2030-01-02T03:00:00.000Z";
const STARTED = "2030-01-02T03:01:00.000Z";
const NEXT = "2030-01-02T03:10:00.000Z";
const iso = (ms: number) => new Date(ms).toISOString();

const RETRY = { baseMs: 1000, maxMs: 30_000 };
/** With random fixed at 0.5, the delay after attempt n is 0.75 × min(30 000, 1000 × 2^(n-1)) ms. */
const ctx = (random: () => number = () => 0.5, retry: BackoffOptions = RETRY): TaskContext => ({ now: NOW, retry, random });

function deepFreeze<T>(value: T): T {
	if (value && typeof value === "object") {
		for (const inner of Object.values(value)) deepFreeze(inner);
		Object.freeze(value);
	}
	return value;
}

/** Frozen, so a decider that mutated its input would throw. */
function task(over: Partial<Task> = {}): Task {
	return deepFreeze({
		task_id: "task-1",
		created_by: null,
		pipeline_id: null,
		run_id: null,
		stage: null,
		type: "analysis",
		payload: { n: 1 },
		priority: "medium",
		timeout: 60,
		retry_count: 2,
		required_capabilities: ["analysis"],
		status: "pending",
		progress: 0,
		assigned_agent: null,
		attempt: 0,
		result: null,
		error: null,
		logs: [{ timestamp: CREATED, level: "info", message: "Task submitted" }],
		idempotency_key: null,
		created_at: CREATED,
		started_at: null,
		updated_at: CREATED,
		finished_at: null,
		next_attempt_at: null,
		...over
	} satisfies Task);
}

/** One task per status, as the lifecycle leaves it. */
const TASKS: Record<TaskStatus, Task> = {
	pending: task(),
	running: task({ status: "running", assigned_agent: "agent-a", attempt: 1, progress: 0.4, started_at: STARTED, updated_at: STARTED }),
	completed: task({ status: "completed", assigned_agent: "agent-a", attempt: 1, progress: 1, result: { rows: 1 }, started_at: STARTED, finished_at: STARTED }),
	failed: task({ status: "failed", assigned_agent: "agent-a", attempt: 3, error: "boom", started_at: STARTED, finished_at: STARTED }),
	retrying: task({ status: "retrying", assigned_agent: "agent-a", attempt: 1, error: "boom", started_at: STARTED, next_attempt_at: NEXT }),
	// Cancelled while it waited out a backoff: next_attempt_at is still set.
	cancelled: task({ status: "cancelled", assigned_agent: "agent-a", attempt: 1, error: "boom", started_at: STARTED, finished_at: STARTED, next_attempt_at: NEXT })
};

const BOOM: TaskFailure = { code: "EXECUTION_ERROR", message: "boom", retryable: true };
const TIMED_OUT_1: TaskFailure = { code: "TIMEOUT", message: "Attempt 1 timed out after 60 s", retryable: true };

type EventType = TaskEvent["type"];
const EVENTS: { [K in EventType]: Extract<TaskEvent, { type: K }> } = {
	claim: { type: "claim", agent: { id: "agent-b", name: "beta" } },
	start: { type: "start", agentCanReport: true },
	progress: { type: "progress", progress: 0.5, message: "halfway" },
	complete: { type: "complete", result: { rows: 3 } },
	fail: { type: "fail", failure: BOOM },
	timeout: { type: "timeout", attempt: 1 },
	"retry-due": { type: "retry-due" },
	cancel: { type: "cancel" },
	retry: { type: "retry" },
	"agent-lost": { type: "agent-lost", agentId: "agent-a", reason: "went offline" },
	requeue: { type: "requeue", agentId: "agent-a", reason: "was unreachable (no route)", delayMs: 5000, undoAttempt: true }
};

const ANNOUNCE: TaskEffect = { type: "announce" };
const DISPATCH: TaskEffect = { type: "dispatch" };
const CLEAR_ATTEMPT: TaskEffect = { type: "clear-attempt-timer" };
const CLEAR_TIMERS: TaskEffect = { type: "clear-timers" };
const LOAD_A: TaskEffect = { type: "agent-load", agentId: "agent-a" };

const none = (...effects: TaskEffect[]): TaskDecision => ({ change: null, effects });
const notRunning = (status: TaskStatus): TaskDecision => ({ reject: { code: "CONFLICT", message: `Task is ${status}, not running`, details: { status } } });
const illegal = (from: TaskStatus, to: TaskStatus): TaskDecision => ({
	reject: { code: "CONFLICT", message: `Task cannot go from '${from}' to '${to}'`, details: { from, to } }
});
const FORBIDDEN: TaskDecision = { reject: { code: "FORBIDDEN", message: "Not this agent's task" } };
/** The fixture's logs plus the one entry the decision must append. */
const logsPlus = (from: Task, level: LogLevelName, message: string) => [...from.logs, { timestamp: NOW_ISO, level, message }];

/** Running, attempt 1 of 3, failed with `failure`: retrying in 750 ms. */
const retryingAfter = (failure: TaskFailure): TaskDecision => ({
	change: {
		status: "retrying",
		error: failure.message,
		next_attempt_at: iso(NOW_MS + 750),
		logs: logsPlus(TASKS.running, "warn", `Attempt 1 failed: ${failure.message}; retrying in 750 ms`)
	},
	effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, { type: "announce-failure", failure }, { type: "arm-retry-timer", at: NOW_MS + 750 }, DISPATCH]
});

/** TASKS.running (agent-a, attempt 1) back to pending, progress reset; `fields` and `timer` for a delay or an undone attempt. */
const requeued = (reason: string, fields: Partial<Task> = {}, timer: TaskEffect[] = []): TaskDecision => ({
	change: {
		status: "pending",
		assigned_agent: null,
		progress: 0,
		next_attempt_at: null,
		...fields,
		logs: logsPlus(TASKS.running, "warn", `Agent agent-a ${reason}; re-queued after attempt 1`)
	},
	effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, ...timer, DISPATCH]
});

/** Claimed by agent-b (EVENTS.claim) as attempt `attempt`: the attempt's deadline is now + 60 s. */
const claimedAs = (attempt: number, logs: Task["logs"]): TaskDecision => ({
	change: { status: "running", assigned_agent: "agent-b", attempt, progress: 0, started_at: NOW_ISO, next_attempt_at: null, logs },
	effects: [
		ANNOUNCE,
		{ type: "agent-load", agentId: "agent-b" },
		{ type: "arm-attempt-timer", attempt, at: NOW_MS + 60_000 },
		{ type: "deliver", agentId: "agent-b", attempt }
	]
});

/** A failed or cancelled task back to pending by a retry: its retries count anew from the attempts it spent. */
const retried = (from: Task): TaskDecision => ({
	change: {
		status: "pending",
		attempt_offset: from.attempt,
		assigned_agent: null,
		progress: 0,
		error: null,
		result: null,
		finished_at: null,
		next_attempt_at: null,
		logs: logsPlus(from, "info", `Retried: runs again after ${from.attempt} attempt(s), with 2 retries anew`)
	},
	effects: [ANNOUNCE, DISPATCH]
});
const notRetryable = (status: TaskStatus): TaskDecision => ({
	reject: { code: "CONFLICT", message: `Only a failed or cancelled task can be retried; this one is ${status}`, details: { status } }
});

const OUTCOMES: { [K in EventType]: Record<TaskStatus, TaskDecision> } = {
	claim: {
		pending: claimedAs(1, logsPlus(TASKS.pending, "info", "Attempt 1 started on agent beta (agent-b)")),
		running: none(),
		completed: none(),
		failed: none(),
		retrying: claimedAs(2, logsPlus(TASKS.retrying, "info", "Attempt 2 started on agent beta (agent-b)")),
		cancelled: none()
	},
	start: {
		pending: none(),
		// The attempt's deadline counts from when it started, not from now.
		running: none({ type: "arm-attempt-timer", attempt: 1, at: Date.parse(STARTED) + 60_000 }),
		completed: none(),
		failed: none(),
		retrying: none({ type: "arm-retry-timer", at: Date.parse(NEXT) }),
		cancelled: none()
	},
	progress: {
		pending: notRunning("pending"),
		running: { change: { progress: 0.5, logs: logsPlus(TASKS.running, "info", "halfway") }, effects: [ANNOUNCE] },
		completed: notRunning("completed"),
		failed: notRunning("failed"),
		retrying: notRunning("retrying"),
		cancelled: notRunning("cancelled")
	},
	complete: {
		pending: notRunning("pending"),
		running: {
			change: {
				status: "completed",
				result: { rows: 3 },
				error: null,
				progress: 1,
				finished_at: NOW_ISO,
				logs: logsPlus(TASKS.running, "info", "Attempt 1 completed")
			},
			effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, CLEAR_TIMERS, DISPATCH]
		},
		completed: notRunning("completed"),
		failed: notRunning("failed"),
		retrying: notRunning("retrying"),
		cancelled: notRunning("cancelled")
	},
	fail: {
		pending: notRunning("pending"),
		running: retryingAfter(BOOM),
		completed: notRunning("completed"),
		failed: notRunning("failed"),
		retrying: notRunning("retrying"),
		cancelled: notRunning("cancelled")
	},
	timeout: {
		pending: none(),
		running: retryingAfter(TIMED_OUT_1),
		completed: none(),
		failed: none(),
		// Same attempt number, but the attempt is over.
		retrying: none(),
		cancelled: none()
	},
	retry: {
		pending: notRetryable("pending"),
		running: notRetryable("running"),
		completed: notRetryable("completed"),
		failed: retried(TASKS.failed),
		retrying: notRetryable("retrying"),
		cancelled: retried(TASKS.cancelled)
	},
	"retry-due": {
		pending: none(DISPATCH),
		running: none(),
		completed: none(),
		failed: none(),
		retrying: none(DISPATCH),
		cancelled: none()
	},
	cancel: {
		pending: {
			change: { status: "cancelled", finished_at: NOW_ISO, next_attempt_at: null, logs: logsPlus(TASKS.pending, "warn", "Task cancelled") },
			effects: [ANNOUNCE, CLEAR_TIMERS, DISPATCH]
		},
		running: {
			change: { status: "cancelled", finished_at: NOW_ISO, next_attempt_at: null, logs: logsPlus(TASKS.running, "warn", "Task cancelled") },
			effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, CLEAR_TIMERS, DISPATCH]
		},
		completed: illegal("completed", "cancelled"),
		failed: illegal("failed", "cancelled"),
		retrying: {
			change: { status: "cancelled", finished_at: NOW_ISO, next_attempt_at: null, logs: logsPlus(TASKS.retrying, "warn", "Task cancelled") },
			effects: [ANNOUNCE, CLEAR_TIMERS, DISPATCH]
		},
		cancelled: illegal("cancelled", "cancelled")
	},
	"agent-lost": {
		pending: none(),
		running: requeued("went offline"),
		completed: none(),
		failed: none(),
		// Still names agent-a, but no attempt of it is running there.
		retrying: none(),
		cancelled: none()
	},
	requeue: {
		pending: none(),
		running: requeued("was unreachable (no route)", { attempt: 0, next_attempt_at: iso(NOW_MS + 5000) }, [{ type: "arm-retry-timer", at: NOW_MS + 5000 }]),
		completed: none(),
		failed: none(),
		retrying: none(),
		cancelled: none()
	}
};

const EVENT_TYPES: EventType[] = ["claim", "start", "progress", "complete", "fail", "timeout", "retry-due", "cancel", "retry", "agent-lost", "requeue"];
const CELLS = EVENT_TYPES.flatMap(event => TASK_STATUSES.map(status => ({ event, status, expected: OUTCOMES[event][status] })));

describe("decideTask: every event in every status", () => {
	test("the table has one cell per event and status", () => {
		expect(Object.keys(OUTCOMES).sort()).toEqual([...EVENT_TYPES].sort());
		expect(Object.keys(EVENTS).sort()).toEqual([...EVENT_TYPES].sort());
		for (const event of EVENT_TYPES) expect(Object.keys(OUTCOMES[event]).sort()).toEqual([...TASK_STATUSES].sort());
		expect(CELLS).toHaveLength(66);
	});

	test.each(CELLS)("$event on a $status task", ({ event, status, expected }) => {
		expect(decideTask(TASKS[status], EVENTS[event], ctx())).toStrictEqual(expected);
	});
});

describe("decideTask: attempt numbers", () => {
	test("a result for the running attempt completes it, as a report would", () => {
		expect(decideTask(TASKS.running, { type: "complete", result: { rows: 3 }, attempt: 1 }, ctx())).toStrictEqual(OUTCOMES.complete.running);
		expect(decideTask(TASKS.running, { type: "fail", failure: BOOM, attempt: 1 }, ctx())).toStrictEqual(OUTCOMES.fail.running);
	});

	test.each([0, 2])("a result for attempt %i while attempt 1 runs is dropped: no change, no effects", attempt => {
		expect(decideTask(TASKS.running, { type: "complete", result: { rows: 3 }, attempt }, ctx())).toStrictEqual(none());
		expect(decideTask(TASKS.running, { type: "fail", failure: BOOM, attempt }, ctx())).toStrictEqual(none());
		expect(decideTask(TASKS.running, { type: "timeout", attempt }, ctx())).toStrictEqual(none());
	});

	test.each(TASK_STATUSES.filter(s => s !== "running"))("a result for an attempt of a %s task is dropped, not refused", status => {
		const attempt = TASKS[status].attempt;
		expect(decideTask(TASKS[status], { type: "complete", result: { rows: 3 }, attempt }, ctx())).toStrictEqual(none());
		expect(decideTask(TASKS[status], { type: "fail", failure: BOOM, attempt }, ctx())).toStrictEqual(none());
	});

	test("complete reported with no attempt on a pending task is a conflict", () => {
		expect(decideTask(TASKS.pending, { type: "complete", result: null }, ctx())).toStrictEqual({
			reject: { code: "CONFLICT", message: "Task is pending, not running", details: { status: "pending" } }
		});
	});

	test("cancel of a completed task is a conflict naming both ends", () => {
		expect(decideTask(TASKS.completed, { type: "cancel" }, ctx())).toStrictEqual({
			reject: { code: "CONFLICT", message: "Task cannot go from 'completed' to 'cancelled'", details: { from: "completed", to: "cancelled" } }
		});
	});
});

describe("decideTask: who may report", () => {
	const agent = (agentId: string, taskId?: string): Principal => ({ sub: `agent:${agentId}`, roles: ["agent"], agent_id: agentId, ...(taskId ? { task_id: taskId } : {}) });
	const REPORTS = [
		{ name: "progress", event: (by: Principal): TaskEvent => ({ ...EVENTS.progress, by }) },
		{ name: "complete", event: (by: Principal): TaskEvent => ({ ...EVENTS.complete, by }) },
		{ name: "fail", event: (by: Principal): TaskEvent => ({ ...EVENTS.fail, by }) }
	] as const;
	const report = (name: (typeof REPORTS)[number]["name"]) => OUTCOMES[name].running;

	describe.each(REPORTS)("$name", ({ name, event }) => {
		test.each([
			["an agent token for another agent", agent("agent-z")],
			["a callback token of the assigned agent scoped to another task", agent("agent-a", "task-2")],
			["a callback token of another agent for this task", agent("agent-z", "task-1")]
		])("%s is FORBIDDEN", (_, by) => {
			expect(decideTask(TASKS.running, event(by), ctx())).toStrictEqual(FORBIDDEN);
		});

		test.each([
			["the assigned agent's token", agent("agent-a")],
			["the assigned agent's callback token for this task", agent("agent-a", "task-1")],
			["an operator", { sub: "olive", roles: ["operator"] } as Principal],
			["an agent token that also has a user role", { sub: "ops-bot", roles: ["agent", "admin"], agent_id: "agent-z" } as Principal]
		])("%s may report: the same decision as with no principal", (_, by) => {
			expect(decideTask(TASKS.running, event(by), ctx())).toStrictEqual(report(name));
		});

		test("access is checked before the status: another agent on a completed task is FORBIDDEN, not CONFLICT", () => {
			expect(decideTask(TASKS.completed, event(agent("agent-z")), ctx())).toStrictEqual(FORBIDDEN);
		});

		test("an agent token on a task assigned to nobody is FORBIDDEN", () => {
			expect(decideTask(TASKS.pending, event(agent("agent-a")), ctx())).toStrictEqual(FORBIDDEN);
		});
	});

	test("access is checked before staleness: another agent's result for a stale attempt is FORBIDDEN", () => {
		expect(decideTask(TASKS.running, { type: "complete", result: null, attempt: 0, by: agent("agent-z") }, ctx())).toStrictEqual(FORBIDDEN);
	});
});

describe("decideTask: retries and backoff", () => {
	const failing = (attempt: number, retry_count: number) =>
		task({ status: "running", assigned_agent: "agent-a", attempt, retry_count, started_at: STARTED, updated_at: STARTED });

	test.each<[number, number, number, BackoffOptions, number]>([
		// attempt, retry_count, random, retry options, delay ms
		[1, 2, 0.5, RETRY, 750],
		[2, 2, 0.5, RETRY, 1500],
		[2, 2, 0, RETRY, 1000],
		[2, 2, 1, RETRY, 2000],
		[5, 10, 0.25, RETRY, 10_000],
		// ceiling capped at maxMs: min(30 000, 32 000)
		[6, 10, 0.5, RETRY, 22_500],
		[2, 2, 0.5, { baseMs: 200, maxMs: 300 }, 225]
	])("attempt %i of retry_count %i failed, random %d, %o: retrying in exactly %i ms", (attempt, retryCount, random, retry, delay) => {
		const failure: TaskFailure = { code: "DELIVERY_FAILED", message: "no answer", retryable: true };
		const draws = jest.fn(() => random);
		const from = failing(attempt, retryCount);
		expect(decideTask(from, { type: "fail", failure }, ctx(draws, retry))).toStrictEqual({
			change: {
				status: "retrying",
				error: "no answer",
				next_attempt_at: iso(NOW_MS + delay),
				logs: logsPlus(from, "warn", `Attempt ${attempt} failed: no answer; retrying in ${delay} ms`)
			},
			effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, { type: "announce-failure", failure }, { type: "arm-retry-timer", at: NOW_MS + delay }, DISPATCH]
		});
		expect(draws).toHaveBeenCalledTimes(1);
	});

	test("the jitter comes from ctx.random, never Math.random", () => {
		const spy = jest.spyOn(Math, "random");
		try {
			decideTask(failing(1, 2), { type: "fail", failure: BOOM }, ctx());
			expect(spy).not.toHaveBeenCalled();
		} finally {
			spy.mockRestore();
		}
	});

	const givingUp = (from: Task, failure: TaskFailure): TaskDecision => ({
		change: {
			status: "failed",
			error: failure.message,
			finished_at: NOW_ISO,
			logs: logsPlus(from, "error", `Attempt ${from.attempt} failed: ${failure.message}; giving up`)
		},
		effects: [ANNOUNCE, CLEAR_ATTEMPT, LOAD_A, { type: "announce-failure", failure }, CLEAR_TIMERS, DISPATCH]
	});

	test.each([
		[3, 2],
		[1, 0],
		// more attempts than allowed (re-queues count attempts too): still the end
		[4, 2]
	])("attempt %i of retry_count %i was the last: the task fails", (attempt, retryCount) => {
		const from = failing(attempt, retryCount);
		expect(decideTask(from, { type: "fail", failure: BOOM }, ctx())).toStrictEqual(givingUp(from, BOOM));
	});

	test("a non-retryable failure fails the task at once, retries left or not", () => {
		const from = failing(1, 5);
		const failure: TaskFailure = { code: "EXECUTION_ERROR", message: "bad input", retryable: false };
		expect(decideTask(from, { type: "fail", failure }, ctx())).toStrictEqual(givingUp(from, failure));
	});

	test("a timeout of the last attempt fails the task with a TIMEOUT failure", () => {
		const from = failing(3, 2);
		expect(decideTask(from, { type: "timeout", attempt: 3 }, ctx())).toStrictEqual(
			givingUp(from, { code: "TIMEOUT", message: "Attempt 3 timed out after 60 s", retryable: true })
		);
	});

	test("the timeout message names the task's own timeout", () => {
		const from = task({ status: "running", assigned_agent: "agent-a", attempt: 1, retry_count: 0, timeout: 2.5, started_at: STARTED });
		expect(decideTask(from, { type: "timeout", attempt: 1 }, ctx())).toStrictEqual(
			givingUp(from, { code: "TIMEOUT", message: "Attempt 1 timed out after 2.5 s", retryable: true })
		);
	});
});

describe("decideTask: back to the queue", () => {
	const requeue = (delayMs: number, undoAttempt: boolean): Extract<TaskEvent, { type: "requeue" }> => ({ type: "requeue", agentId: "agent-a", reason: "was unreachable", delayMs, undoAttempt });

	test("no delay, attempt kept: pending at once, no timer", () => {
		expect(decideTask(TASKS.running, requeue(0, false), ctx())).toStrictEqual(requeued("was unreachable"));
	});

	test("a delay: next_attempt_at and a retry timer at now + delay", () => {
		expect(decideTask(TASKS.running, requeue(2500, false), ctx())).toStrictEqual(
			requeued("was unreachable", { next_attempt_at: iso(NOW_MS + 2500) }, [{ type: "arm-retry-timer", at: NOW_MS + 2500 }])
		);
	});

	test("undoAttempt: the attempt that never got there is not counted", () => {
		expect(decideTask(TASKS.running, requeue(0, true), ctx())).toStrictEqual(requeued("was unreachable", { attempt: 0 }));
		const second = task({ status: "running", assigned_agent: "agent-a", attempt: 2, started_at: STARTED });
		expect(decideTask(second, requeue(0, true), ctx())).toMatchObject({
			change: { attempt: 1, logs: logsPlus(second, "warn", "Agent agent-a was unreachable; re-queued after attempt 2") }
		});
	});

	test("about another agent than the assigned one: no change, no effects", () => {
		expect(decideTask(TASKS.running, { ...requeue(2500, true), agentId: "agent-z" }, ctx())).toStrictEqual(none());
		expect(decideTask(TASKS.running, { type: "agent-lost", agentId: "agent-z", reason: "went offline" }, ctx())).toStrictEqual(none());
	});

	test("start on a running task whose agent cannot report: back to the queue, lost its dispatcher", () => {
		expect(decideTask(TASKS.running, { type: "start", agentCanReport: false }, ctx())).toStrictEqual(requeued("lost its dispatcher"));
	});
});

describe("decideTask: start", () => {
	test("a running attempt with no started_at counts its deadline from updated_at", () => {
		const from = task({ status: "running", assigned_agent: "agent-a", attempt: 2, timeout: 30, started_at: null, updated_at: STARTED });
		expect(decideTask(from, { type: "start", agentCanReport: true }, ctx())).toStrictEqual(none({ type: "arm-attempt-timer", attempt: 2, at: Date.parse(STARTED) + 30_000 }));
	});

	test("a pending task re-queued with a delay gets its wake-up again", () => {
		const from = task({ next_attempt_at: NEXT });
		expect(decideTask(from, { type: "start", agentCanReport: true }, ctx())).toStrictEqual(none({ type: "arm-retry-timer", at: Date.parse(NEXT) }));
	});

	test.each(TASK_STATUSES.filter(s => s !== "running"))("agentCanReport does not matter for a %s task", status => {
		expect(decideTask(TASKS[status], { type: "start", agentCanReport: false }, ctx())).toStrictEqual(OUTCOMES.start[status]);
	});
});

describe("decideTask: progress", () => {
	test.each([undefined, ""])("with message %p: the progress only, no log entry", message => {
		expect(decideTask(TASKS.running, { type: "progress", progress: 0.3, message }, ctx())).toStrictEqual({ change: { progress: 0.3 }, effects: [ANNOUNCE] });
	});
});

describe("decideTask: the log", () => {
	const entry = (n: number) => ({ timestamp: CREATED, level: "debug" as const, message: `entry ${n}` });
	const withLogs = (count: number) => task({ ...TASKS.running, logs: Array.from({ length: count }, (_, n) => entry(n)) });

	test("holds at most 200 entries", () => {
		expect(MAX_TASK_LOGS).toBe(200);
	});

	test("a full log drops its oldest entry for the new one", () => {
		const decision = decideTask(withLogs(200), EVENTS.complete, ctx());
		const logs = "change" in decision ? decision.change!.logs! : [];
		expect(logs).toHaveLength(200);
		expect(logs[0]).toEqual(entry(1));
		expect(logs[198]).toEqual(entry(199));
		expect(logs[199]).toEqual({ timestamp: NOW_ISO, level: "info", message: "Attempt 1 completed" });
	});

	test("a log of 199 keeps every entry and grows to 200", () => {
		const decision = decideTask(withLogs(199), EVENTS.cancel, ctx());
		const logs = "change" in decision ? decision.change!.logs! : [];
		expect(logs).toEqual([...withLogs(199).logs, { timestamp: NOW_ISO, level: "warn", message: "Task cancelled" }]);
	});

	test("an over-long stored log is cut to the newest 200", () => {
		const decision = decideTask(withLogs(250), EVENTS.progress, ctx());
		const logs = "change" in decision ? decision.change!.logs! : [];
		expect(logs).toHaveLength(200);
		expect(logs[0]).toEqual(entry(51));
		expect(logs[199]).toEqual({ timestamp: NOW_ISO, level: "info", message: "halfway" });
	});
});

describe("newTask", () => {
	test("defaults: pending, medium, no retries, one 'Task submitted' entry; announce then dispatch", () => {
		expect(newTask({ task_id: "task-9", type: "transformation", timeout: 30 }, NOW)).toStrictEqual({
			task: {
				task_id: "task-9",
				created_by: null,
				pipeline_id: null,
				run_id: null,
				stage: null,
				type: "transformation",
				payload: {},
				priority: "medium",
				timeout: 30,
				retry_count: 0,
				required_capabilities: [],
				status: "pending",
				progress: 0,
				assigned_agent: null,
				attempt: 0,
				result: null,
				error: null,
				logs: [{ timestamp: NOW_ISO, level: "info", message: "Task submitted" }],
				idempotency_key: null,
				created_at: NOW_ISO,
				started_at: null,
				updated_at: NOW_ISO,
				finished_at: null,
				next_attempt_at: null
			},
			effects: [ANNOUNCE, DISPATCH]
		});
	});

	test("given fields are kept, stage 0 included; required_capabilities de-duplicated in first-seen order", () => {
		const capabilities = ["gpu", "csv", "gpu", "arm", "csv"];
		const { task: made, effects } = newTask(
			{
				task_id: "task-10",
				pipeline_id: "pipe-1",
				run_id: "run-1",
				stage: 0,
				type: "analysis",
				payload: { source: "s3://x" },
				priority: "high",
				timeout: 120,
				retry_count: 3,
				required_capabilities: capabilities,
				idempotency_key: "key-1"
			},
			NOW
		);
		expect(made).toMatchObject({
			task_id: "task-10",
			pipeline_id: "pipe-1",
			run_id: "run-1",
			stage: 0,
			payload: { source: "s3://x" },
			priority: "high",
			timeout: 120,
			retry_count: 3,
			required_capabilities: ["gpu", "csv", "arm"],
			idempotency_key: "key-1",
			status: "pending",
			attempt: 0
		});
		expect(capabilities).toEqual(["gpu", "csv", "gpu", "arm", "csv"]);
		expect(effects).toStrictEqual([ANNOUNCE, DISPATCH]);
	});

	test("a new task is claimed as attempt 1", () => {
		const { task: made } = newTask({ task_id: "task-1", type: "analysis", timeout: 60 }, NOW);
		expect(decideTask(made, EVENTS.claim, ctx())).toStrictEqual(
			claimedAs(1, [
				{ timestamp: NOW_ISO, level: "info", message: "Task submitted" },
				{ timestamp: NOW_ISO, level: "info", message: "Attempt 1 started on agent beta (agent-b)" }
			])
		);
	});
});
