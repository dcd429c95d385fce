/** Which finished records the retention removes (src/domain/retention.ts) and how often it looks. */
import {
	DAY_MS, finishedBefore, goesWithRun, isOrphanTaskExpired, isRunExpired, isTaskExpired, retentionPolicy, sweepIntervalMs
} from "../../src/domain/retention";
import { sweepInBatches } from "../../src/runtime/retention";
import { TASK_STATUSES, type RunStatus, type TaskStatus } from "../../src/types";

const NOW = new Date("2026-03-01T12:00:00.000Z");
const policy = retentionPolicy({ taskDays: 7, runDays: 30 });
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const task = (status: TaskStatus, finished_at: string | null, run_id: string | null = null) => ({ status, finished_at, run_id });

describe("retention rules", () => {
	test("a standalone task goes once it finished longer ago than TASK_RETENTION_DAYS, whatever way it finished", () => {
		for (const status of ["completed", "failed", "cancelled"] as const) {
			expect(isTaskExpired(task(status, ago(7 * DAY_MS + 1)), NOW, policy)).toBe(true);
			expect(isTaskExpired(task(status, ago(7 * DAY_MS - 1)), NOW, policy)).toBe(false);
		}
	});

	test("an open task never goes, however old (a retried one has no finished_at)", () => {
		for (const status of TASK_STATUSES.filter(s => !["completed", "failed", "cancelled"].includes(s)))
			expect(isTaskExpired(task(status, ago(100 * DAY_MS)), NOW, policy)).toBe(false);
		expect(isTaskExpired(task("failed", null), NOW, policy)).toBe(false);
		expect(isTaskExpired(task("completed", "not a date"), NOW, policy)).toBe(false);
	});

	test("a stage task does not go on its own while its run is there; without its run, after both retentions", () => {
		const old = task("completed", ago(31 * DAY_MS), "run-1");
		expect(isTaskExpired(old, NOW, policy)).toBe(false);
		expect(isOrphanTaskExpired(old, true, NOW, policy)).toBe(false);
		expect(isOrphanTaskExpired(old, false, NOW, policy)).toBe(true);
		expect(isOrphanTaskExpired(task("completed", ago(8 * DAY_MS), "run-1"), false, NOW, policy)).toBe(false);
		expect(isOrphanTaskExpired(task("running", ago(31 * DAY_MS), "run-1"), false, NOW, policy)).toBe(false);
		expect(isOrphanTaskExpired(task("completed", ago(31 * DAY_MS)), false, NOW, policy)).toBe(false);
	});

	test("a run goes once it finished longer ago than RUN_RETENTION_DAYS; a running one never; its open tasks stay", () => {
		for (const status of ["completed", "failed", "cancelled"] as RunStatus[]) {
			expect(isRunExpired({ status, finished_at: ago(30 * DAY_MS + 1) }, NOW, policy)).toBe(true);
			expect(isRunExpired({ status, finished_at: ago(29 * DAY_MS) }, NOW, policy)).toBe(false);
		}
		expect(isRunExpired({ status: "running", finished_at: null }, NOW, policy)).toBe(false);
		expect(goesWithRun({ status: "completed" })).toBe(true);
		expect(goesWithRun({ status: "running" })).toBe(false);
	});

	test("decimal days, the cutoff as stored, and a sweep at least once a minute", () => {
		expect(retentionPolicy({ taskDays: 0.00001, runDays: 0.5 })).toEqual({ taskMs: 864, runMs: 12 * 3600_000 });
		expect(finishedBefore(NOW, DAY_MS)).toBe("2026-02-28T12:00:00.000Z");
		expect(sweepIntervalMs(7 * DAY_MS)).toBe(60_000);
		expect(sweepIntervalMs(864)).toBe(1000);
		expect(sweepIntervalMs(20_000)).toBe(5000);
	});
});

describe("sweepInBatches", () => {
	test("steps until a query comes back short, skipping what stayed, and yields to the event loop between steps", async () => {
		// 1,234 candidates, every 100th of which a step keeps.
		let rows = Array.from({ length: 1234 }, (_, i) => i);
		const offsets: number[] = [];
		// Queued before the sweep: it runs at the sweep's first yield, before the second step.
		let otherWorkRan = false;
		setImmediate(() => (otherWorkRan = true));
		const sawOtherWork: boolean[] = [];
		const removed = await sweepInBatches(async (offset, limit) => {
			offsets.push(offset);
			sawOtherWork.push(otherWorkRan);
			const found = rows.slice(offset, offset + limit);
			const gone = new Set(found.filter(n => n % 100 !== 0));
			rows = rows.filter(n => !gone.has(n));
			return { found: found.length, removed: gone.size };
		}, 1000, 500);
		expect(removed).toBe(1234 - 13);
		expect(rows).toHaveLength(13);
		expect(offsets).toEqual([0, 5, 10]);
		expect(sawOtherWork).toEqual([false, true, true]);
	});

	test("stops after maxSteps", async () => {
		let steps = 0;
		await sweepInBatches(async (_offset, limit) => (steps++, { found: limit, removed: limit }), 3, 10);
		expect(steps).toBe(3);
	});
});
