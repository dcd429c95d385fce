import {
	afterAttemptFailure,
	assertTransition,
	canTransition,
	IllegalTransitionError,
	isTerminal,
	maxAttempts,
	TERMINAL_STATUSES
} from "../../src/domain/tasks/state-machine";
import { TASK_STATUSES, type TaskStatus } from "../../src/types";

// Written out independently of the module's table, so a slip there shows up here.
const LEGAL: Array<[TaskStatus, TaskStatus]> = [
	["pending", "running"],
	["pending", "cancelled"],
	["running", "completed"],
	["running", "failed"],
	["running", "retrying"],
	["running", "pending"],
	["running", "cancelled"],
	["retrying", "running"],
	["retrying", "pending"],
	["retrying", "cancelled"],
	// Only by an explicit retry (POST /tasks/{id}/retry).
	["failed", "pending"],
	["cancelled", "pending"]
];

const isLegal = (from: TaskStatus, to: TaskStatus) => LEGAL.some(([f, t]) => f === from && t === to);
const ALL_PAIRS = TASK_STATUSES.flatMap(from => TASK_STATUSES.map(to => [from, to] as [TaskStatus, TaskStatus]));
const ILLEGAL = ALL_PAIRS.filter(([from, to]) => !isLegal(from, to));

describe("canTransition", () => {
	it.each(LEGAL)("allows %s → %s", (from, to) => {
		expect(canTransition(from, to)).toBe(true);
	});

	it.each(ILLEGAL)("refuses %s → %s", (from, to) => {
		expect(canTransition(from, to)).toBe(false);
	});

	it("covers every pair of statuses exactly once", () => {
		expect(LEGAL.length + ILLEGAL.length).toBe(TASK_STATUSES.length ** 2);
		expect(ILLEGAL.length).toBe(24);
	});

	it("refuses the tempting shortcuts", () => {
		expect(canTransition("retrying", "failed")).toBe(false);
		expect(canTransition("pending", "completed")).toBe(false);
		expect(canTransition("pending", "failed")).toBe(false);
		expect(canTransition("cancelled", "completed")).toBe(false);
		expect(canTransition("completed", "running")).toBe(false);
		expect(canTransition("failed", "retrying")).toBe(false);
	});

	it("refuses staying in the same status", () => {
		for (const status of TASK_STATUSES) expect(canTransition(status, status)).toBe(false);
	});

	it("refuses statuses it does not know, including inherited property names", () => {
		expect(canTransition("constructor" as TaskStatus, "running")).toBe(false);
		expect(canTransition("__proto__" as TaskStatus, "running")).toBe(false);
		expect(canTransition("bogus" as TaskStatus, "pending")).toBe(false);
		expect(canTransition("pending", "bogus" as TaskStatus)).toBe(false);
	});
});

describe("assertTransition", () => {
	it("returns quietly for a legal change", () => {
		expect(() => assertTransition("running", "completed")).not.toThrow();
	});

	it("throws an IllegalTransitionError naming both statuses", () => {
		let thrown: unknown;
		try {
			assertTransition("completed", "running");
		} catch (err) {
			thrown = err;
		}
		expect(thrown).toBeInstanceOf(IllegalTransitionError);
		expect(thrown).toBeInstanceOf(Error);
		const error = thrown as IllegalTransitionError;
		expect(error.name).toBe("IllegalTransitionError");
		expect(error.from).toBe("completed");
		expect(error.to).toBe("running");
		expect(error.message).toContain("completed");
		expect(error.message).toContain("running");
	});

	it.each(ILLEGAL)("throws for %s → %s", (from, to) => {
		expect(() => assertTransition(from, to)).toThrow(IllegalTransitionError);
	});
});

describe("terminal statuses", () => {
	it("are completed, failed and cancelled", () => {
		expect([...TERMINAL_STATUSES].sort()).toEqual(["cancelled", "completed", "failed"]);
		expect(isTerminal("completed")).toBe(true);
		expect(isTerminal("failed")).toBe(true);
		expect(isTerminal("cancelled")).toBe(true);
		expect(isTerminal("pending")).toBe(false);
		expect(isTerminal("running")).toBe(false);
		expect(isTerminal("retrying")).toBe(false);
	});

	it("have no way out but an explicit retry (back to pending; never for a completed task), and every other status has one", () => {
		for (const from of TASK_STATUSES) {
			const exits = TASK_STATUSES.filter(to => canTransition(from, to));
			if (from === "completed") expect(exits).toEqual([]);
			else if (isTerminal(from)) expect(exits).toEqual(["pending"]);
			else expect(exits.length).toBeGreaterThan(0);
		}
	});

	it("can be reached from running, and cancelled from every live status", () => {
		for (const terminal of TERMINAL_STATUSES) expect(canTransition("running", terminal)).toBe(true);
		for (const live of TASK_STATUSES.filter(s => !isTerminal(s))) expect(canTransition(live, "cancelled")).toBe(true);
	});
});

describe("maxAttempts", () => {
	it("is retries plus the first attempt", () => {
		expect(maxAttempts(0)).toBe(1);
		expect(maxAttempts(3)).toBe(4);
	});

	it("treats nonsense retry counts as no retries and floors fractions", () => {
		expect(maxAttempts(-2)).toBe(1);
		expect(maxAttempts(Number.NaN)).toBe(1);
		expect(maxAttempts(2.7)).toBe(3);
	});
});

describe("afterAttemptFailure", () => {
	it("fails on the first failure when retry_count is 0", () => {
		expect(afterAttemptFailure({ attempt: 1, retry_count: 0 }, true)).toBe("failed");
	});

	it("allows 4 attempts when retry_count is 3", () => {
		expect(afterAttemptFailure({ attempt: 1, retry_count: 3 }, true)).toBe("retrying");
		expect(afterAttemptFailure({ attempt: 2, retry_count: 3 }, true)).toBe("retrying");
		expect(afterAttemptFailure({ attempt: 3, retry_count: 3 }, true)).toBe("retrying");
		expect(afterAttemptFailure({ attempt: 4, retry_count: 3 }, true)).toBe("failed");
	});

	it("fails once attempts run past the allowance (a re-queue may have added one)", () => {
		expect(afterAttemptFailure({ attempt: 5, retry_count: 3 }, true)).toBe("failed");
	});

	it("fails at once when the failure is not retryable, whatever retries are left", () => {
		expect(afterAttemptFailure({ attempt: 1, retry_count: 3 }, false)).toBe("failed");
		expect(afterAttemptFailure({ attempt: 1, retry_count: 100 }, false)).toBe("failed");
	});

	it("treats a failure as retryable when not told otherwise", () => {
		expect(afterAttemptFailure({ attempt: 1, retry_count: 1 })).toBe("retrying");
	});

	it("only ever leads somewhere the state machine allows from running", () => {
		for (const attempt of [1, 2, 3]) {
			for (const retryable of [true, false]) {
				const next = afterAttemptFailure({ attempt, retry_count: 2 }, retryable);
				expect(canTransition("running", next)).toBe(true);
			}
		}
	});
});
