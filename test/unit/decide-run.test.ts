/**
 * decideRun, table by table: every event in every run status, then the stage situations that
 * matter (sequential, diamond, optional and required failures, start failures, reconcile, retry,
 * cancel, notified). Expected runs and effects are written out; only the fixtures are built.
 */
import { decideRun, type RunContext, type RunDecision, type RunEffect, type RunEvent } from "../../src/domain/pipelines/decide";
import { newRun, settle, type StageTaskParams, type StoredRun } from "../../src/domain/pipelines/runs";
import type { UpstreamEntry } from "../../src/stage-contract";
import type { Pipeline, RunStage, RunStatus, StageStatus, TaskStatus } from "../../src/types";
import { diamond, pipeline, task } from "../support/pipelines";

const CREATED = "2024-01-01T00:00:00.000Z";
/** When a fixture run was last written (and ended, if it did). */
const BEFORE = "2024-01-01T00:02:00.000Z";
/** The decider's clock. */
const NOW = "2024-01-01T00:05:00.000Z";

const sequential = pipeline({
	name: "sequential",
	stages: [
		{ name: "fetch", type: "data-ingestion" },
		{ name: "clean", type: "transformation", retry_count: 5 },
		{ name: "report", type: "output" }
	]
});
const independent = pipeline({ name: "independent", stages: [{ name: "a", type: "processing" }, { name: "b", type: "analysis" }], dependencies: [] });
/** The same definition under another id: a run of `sequential` is not one of its runs. */
const elsewhere = pipeline({ name: "sequential", stages: sequential.stages }, "pipeline-2");

const WEBHOOK = { webhook: "http://hooks.test/run" };
const INPUT = { source: "s3://in" };
const PARAMETERS = { batch: 2 };

const ctx = (p: Pipeline): RunContext => ({ pipeline: p, now: new Date(NOW), stageTaskId: (run, i, a) => `t-${run}-${i}-${a}` });
/** Stage `index`'s task id in generation `attempt` of run-1, as `ctx.stageTaskId` makes it. */
const tid = (index: number, attempt = 0) => `t-run-1-${index}-${attempt}`;

type StageSpec = [status: StageStatus, taskId?: string | null, result?: unknown, error?: string | null];

function stagesOf(p: Pipeline, specs: StageSpec[]): RunStage[] {
	return specs.map(([status, task_id = null, result = null, error = null], index) => ({ index, name: p.stages[index].name, status, task_id, result, error }));
}

/** run-1 of `p` with these stages, last written (and, when finished, ended) at BEFORE; with a webhook unless `fields` say otherwise. */
function runOf(p: Pipeline, status: RunStatus, specs: StageSpec[], fields: Partial<StoredRun> = {}): StoredRun {
	const fresh = newRun("run-1", p, { input_data: INPUT, parameters: PARAMETERS, notification: WEBHOOK }, CREATED);
	return { ...settle(fresh, stagesOf(p, specs), status === "running" ? null : status, BEFORE), ...fields };
}

const QUIET: Partial<StoredRun> = { notification: null, notification_due: false };

const fresh = (p: Pipeline, fields: Partial<StoredRun> = {}) => runOf(p, "running", p.stages.map((): StageSpec => ["waiting"]), fields);

/** The run as the decider should write it: `run` with the fields that follow from the event, updated now. */
function written(
	run: StoredRun,
	fields: Pick<StoredRun, "status" | "stages" | "current_stage" | "completed_stages" | "progress" | "finished_at" | "notification_due"> & Partial<StoredRun>
): StoredRun {
	return { ...run, updated_at: NOW, ...fields };
}

const NOTHING: RunDecision = { change: null, effects: [] };
const ANNOUNCE: RunEffect = { type: "announce" };
const NOTIFY: RunEffect = { type: "notify" };
const cancelTask = (taskId: string): RunEffect => ({ type: "cancel-task", taskId });

const upstream = (p: Pipeline, index: number, status: StageStatus, result: unknown): UpstreamEntry => ({ index, type: p.stages[index].type, status, result });

/** The create-stage-task effect for stage `index` of run-1 in generation `attempt`, with its task's params written out. */
function creates(
	p: Pipeline,
	index: number,
	attempt: number,
	payload: { upstream?: Record<string, UpstreamEntry>; parameters?: Record<string, unknown> } = {},
	extra: Partial<StageTaskParams> = {}
): RunEffect {
	const { name, type } = p.stages[index];
	const params: StageTaskParams = {
		pipeline_id: "pipeline-1",
		run_id: "run-1",
		stage: index,
		type,
		retry_count: 2,
		payload: { input_data: INPUT, parameters: payload.parameters ?? PARAMETERS, upstream: payload.upstream ?? {}, stage: { index, name, type } },
		...extra
	};
	return { type: "create-stage-task", index, taskId: tid(index, attempt), params };
}

const JOIN_TASK: Partial<StageTaskParams> = { timeout: 30, retry_count: 0, required_capabilities: ["disk"] };
const LEFT_PARAMETERS = { batch: 2, side: "left" };

const ended = (stage: number | null, id: string, status: TaskStatus, result: unknown = null, error: string | null = null): RunEvent => ({
	type: "task-ended",
	task: { ...task(id, status, result, error), stage }
});

const decide = (run: StoredRun, event: RunEvent, p: Pipeline = sequential) => decideRun(run, event, ctx(p));

// ---------- every event in every run status ----------

/** One sequential run per status: stage 1 is where it is at (running, its failure, its cancellation). */
const RUNS: Record<RunStatus, StoredRun> = {
	running: runOf(sequential, "running", [["completed", tid(0), { rows: 3 }], ["running", tid(1)], ["waiting"]]),
	completed: runOf(sequential, "completed", [["completed", tid(0), { rows: 3 }], ["completed", tid(1), { clean: true }], ["completed", tid(2), { url: "r" }]]),
	failed: runOf(sequential, "failed", [["completed", tid(0), { rows: 3 }], ["failed", tid(1), null, "boom"], ["skipped", null, null, "required stage 1 (clean) failed"]]),
	cancelled: runOf(sequential, "cancelled", [["completed", tid(0), { rows: 3 }], ["cancelled", tid(1), null, "run cancelled"], ["cancelled", null, null, "run cancelled"]])
};

const EVENTS: Record<RunEvent["type"], RunEvent> = {
	start: { type: "start" },
	"task-ended": ended(1, tid(1), "completed", { clean: true }),
	reconcile: { type: "reconcile", tasks: { 1: task(tid(1), "completed", { clean: true }) } },
	"stage-start-failed": { type: "stage-start-failed", index: 1, taskId: tid(1), reason: "no agent" },
	cancel: { type: "cancel" },
	retry: { type: "retry" },
	notified: { type: "notified", finishedAt: BEFORE }
};

/** The running run once stage 1's task completed: stage 2 starts with clean's result upstream. */
const stageOneCompleted = (run: StoredRun): RunDecision => ({
	change: written(run, {
		status: "running",
		stages: stagesOf(sequential, [["completed", tid(0), { rows: 3 }], ["completed", tid(1), { clean: true }], ["running", tid(2)]]),
		current_stage: 2, completed_stages: [0, 1], progress: 0.67, finished_at: null, notification_due: false
	}),
	effects: [ANNOUNCE, creates(sequential, 2, 0, { upstream: { clean: upstream(sequential, 1, "completed", { clean: true }) } })]
});

/** A failed or cancelled run retried: generation 1 runs stage 1 again (new id, fetch's result upstream), stage 2 waits. */
const retried = (run: StoredRun): RunDecision => ({
	change: written(run, {
		status: "running", attempt: 1,
		stages: stagesOf(sequential, [["completed", tid(0), { rows: 3 }], ["running", tid(1, 1)], ["waiting"]]),
		current_stage: 1, completed_stages: [0], progress: 0.33, finished_at: null, notification_due: false
	}),
	effects: [ANNOUNCE, creates(sequential, 1, 1, { upstream: { fetch: upstream(sequential, 0, "completed", { rows: 3 }) } }, { retry_count: 5 })]
});

const notifiedNow = (): RunDecision => ({ change: { notification_due: false }, effects: [] });
const nothing = (): RunDecision => NOTHING;
const conflict = (message: string) => (run: StoredRun): RunDecision => ({ reject: { code: "CONFLICT", message, details: { status: run.status } } });
const notRetryable = (status: RunStatus) => conflict(`Only a failed or cancelled run can be retried; this one is ${status}`);

const MATRIX: [RunStatus, RunEvent["type"], (run: StoredRun) => RunDecision][] = [
	["running", "start", nothing],
	["running", "task-ended", stageOneCompleted],
	["running", "reconcile", stageOneCompleted],
	["running", "stage-start-failed", run => ({
		change: written(run, {
			status: "failed",
			stages: stagesOf(sequential, [
				["completed", tid(0), { rows: 3 }], ["failed", tid(1), null, "could not start the stage's task: no agent"], ["skipped", null, null, "required stage 1 (clean) failed"]
			]),
			current_stage: null, completed_stages: [0], progress: 1, finished_at: NOW, notification_due: true
		}),
		effects: [ANNOUNCE, NOTIFY]
	})],
	["running", "cancel", run => ({
		change: written(run, {
			status: "cancelled",
			stages: stagesOf(sequential, [["completed", tid(0), { rows: 3 }], ["cancelled", tid(1), null, "run cancelled"], ["cancelled", null, null, "run cancelled"]]),
			current_stage: null, completed_stages: [0], progress: 0.33, finished_at: NOW, notification_due: true
		}),
		effects: [ANNOUNCE, cancelTask(tid(1)), NOTIFY]
	})],
	["running", "retry", notRetryable("running")],
	["running", "notified", nothing],

	["completed", "start", nothing],
	["completed", "task-ended", nothing],
	["completed", "reconcile", nothing],
	["completed", "stage-start-failed", nothing],
	["completed", "cancel", conflict("Run is completed")],
	["completed", "retry", notRetryable("completed")],
	["completed", "notified", notifiedNow],

	["failed", "start", nothing],
	["failed", "task-ended", nothing],
	["failed", "reconcile", nothing],
	["failed", "stage-start-failed", nothing],
	["failed", "cancel", conflict("Run is failed")],
	["failed", "retry", retried],
	["failed", "notified", notifiedNow],

	["cancelled", "start", nothing],
	// The stage's own task reporting its cancellation after the run was cancelled: old news.
	["cancelled", "task-ended", nothing],
	["cancelled", "reconcile", nothing],
	["cancelled", "stage-start-failed", nothing],
	["cancelled", "cancel", conflict("Run is cancelled")],
	["cancelled", "retry", retried],
	["cancelled", "notified", notifiedNow]
];

describe("every event in every run status", () => {
	test("the table covers each pair once", () => {
		const pairs = MATRIX.map(([status, type]) => `${status}/${type}`);
		expect(new Set(pairs).size).toBe(Object.keys(RUNS).length * Object.keys(EVENTS).length);
	});

	test.each(MATRIX)("%s run, %s", (status, type, expected) => {
		const run = RUNS[status];
		expect(decide(run, EVENTS[type])).toStrictEqual(expected(run));
	});

	test.each(MATRIX)("%s run, %s, under another pipeline: NOT_FOUND", (status, type) => {
		expect(decideRun(RUNS[status], EVENTS[type], ctx(elsewhere))).toStrictEqual({
			reject: { code: "NOT_FOUND", message: "Run 'run-1' not found", details: { id: "run-1" } }
		});
	});
});

// ---------- start ----------

describe("start", () => {
	test("a sequential run starts its first stage with the run's input and parameters", () => {
		const run = fresh(sequential);
		expect(decide(run, { type: "start" })).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(sequential, [["running", tid(0)], ["waiting"], ["waiting"]]),
				current_stage: 0, completed_stages: [], progress: 0, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(sequential, 0, 0)]
		});
	});

	test("stages without dependencies all start at once, in index order", () => {
		const run = fresh(independent);
		expect(decide(run, { type: "start" }, independent)).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(independent, [["running", tid(0)], ["running", tid(1)]]),
				current_stage: 0, completed_stages: [], progress: 0, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(independent, 0, 0), creates(independent, 1, 0)]
		});
	});
});

// ---------- task-ended ----------

describe("task-ended: stale news changes nothing", () => {
	const secondGeneration = runOf(sequential, "running", [["completed", tid(0), { rows: 3 }], ["running", tid(1, 1)], ["waiting"]], { attempt: 1 });
	test.each<[string, StoredRun, RunEvent]>([
		["another task than the stage's", RUNS.running, ended(1, "t-someone-else", "completed", { x: 1 })],
		["a stage that moved on (already completed)", RUNS.running, ended(0, tid(0), "failed", null, "late")],
		["the previous generation's task after a retry", secondGeneration, ended(1, tid(1, 0), "completed", { old: true })],
		["a stage still waiting", RUNS.running, ended(2, tid(2), "completed", {})],
		["no stage", RUNS.running, ended(null, tid(1), "completed", {})],
		["a stage the run does not have", RUNS.running, ended(7, tid(1), "completed", {})],
		["a run that completed", RUNS.completed, ended(2, tid(2), "failed", null, "late")]
	])("%s", (_what, run, event) => {
		expect(decide(run, event)).toStrictEqual(NOTHING);
	});
});

describe("task-ended: the last stage ends the run", () => {
	const last = runOf(sequential, "running", [["completed", tid(0), { rows: 3 }], ["completed", tid(1), { clean: true }], ["running", tid(2)]]);
	const done: StageSpec[] = [["completed", tid(0), { rows: 3 }], ["completed", tid(1), { clean: true }], ["completed", tid(2), { url: "r" }]];

	test.each<[string, StoredRun, boolean, RunEffect[]]>([
		["with a notification: notify after the announce", last, true, [ANNOUNCE, NOTIFY]],
		["without one: only the announce", { ...last, ...QUIET }, false, [ANNOUNCE]]
	])("%s", (_what, run, due, effects) => {
		expect(decide(run, ended(2, tid(2), "completed", { url: "r" }))).toStrictEqual({
			change: written(run, {
				status: "completed", stages: stagesOf(sequential, done),
				current_stage: null, completed_stages: [0, 1, 2], progress: 1, finished_at: NOW, notification_due: due
			}),
			effects
		});
	});
});

describe("a required stage that ends badly skips what depends on it, down the chain", () => {
	const first = runOf(sequential, "running", [["running", tid(0)], ["waiting"], ["waiting"]], QUIET);
	test.each<[TaskStatus, string | null, StageStatus, string]>([
		["failed", "disk full", "failed", "disk full"],
		["failed", null, "failed", "task failed"],
		["cancelled", null, "cancelled", "task cancelled"]
	])("its task %s (error %p)", (taskStatus, error, stageStatus, stageError) => {
		expect(decide(first, ended(0, tid(0), taskStatus, { partial: 1 }, error))).toStrictEqual({
			change: written(first, {
				status: "failed",
				stages: stagesOf(sequential, [
					[stageStatus, tid(0), null, stageError],
					["skipped", null, null, `required stage 0 (fetch) ${stageStatus}`],
					["skipped", null, null, "required stage 1 (clean) skipped"]
				]),
				current_stage: null, completed_stages: [], progress: stageStatus === "cancelled" ? 0.67 : 1, finished_at: NOW, notification_due: false
			}),
			effects: [ANNOUNCE]
		});
	});
});

// ---------- the diamond ----------

describe("diamond: fan-out after the source, the join only after both branches", () => {
	const SOURCE = { rows: 10 };
	const fromSource = { source: upstream(diamond, 0, "completed", SOURCE) };
	const branches = (left: StageSpec, right: StageSpec, join: StageSpec = ["waiting"]) =>
		runOf(diamond, "running", [["completed", tid(0), SOURCE], left, right, join]);

	test("the source completing starts both branches, each with the source's result", () => {
		const run = runOf(diamond, "running", [["running", tid(0)], ["waiting"], ["waiting"], ["waiting"]]);
		expect(decide(run, ended(0, tid(0), "completed", SOURCE), diamond)).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(diamond, [["completed", tid(0), SOURCE], ["running", tid(1)], ["running", tid(2)], ["waiting"]]),
				current_stage: 1, completed_stages: [0], progress: 0.25, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(diamond, 1, 0, { upstream: fromSource, parameters: LEFT_PARAMETERS }), creates(diamond, 2, 0, { upstream: fromSource })]
		});
	});

	test("one branch done: the join still waits for the other", () => {
		const run = branches(["running", tid(1)], ["running", tid(2)]);
		expect(decide(run, ended(1, tid(1), "completed", { l: 1 }), diamond)).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(diamond, [["completed", tid(0), SOURCE], ["completed", tid(1), { l: 1 }], ["running", tid(2)], ["waiting"]]),
				current_stage: 2, completed_stages: [0, 1], progress: 0.5, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE]
		});
	});

	test.each<[string, TaskStatus, string | null, StageSpec, UpstreamEntry]>([
		["completed", "completed", null, ["completed", tid(2), { r: 2 }], upstream(diamond, 2, "completed", { r: 2 })],
		// Optional: its failure lets the join go ahead, which is told the branch failed.
		["failed (optional)", "failed", "oom", ["failed", tid(2), null, "oom"], upstream(diamond, 2, "failed", null)]
	])("the second branch %s: the join starts with both branches upstream", (_what, status, error, rightAfter, rightUpstream) => {
		const run = branches(["completed", tid(1), { l: 1 }], ["running", tid(2)]);
		expect(decide(run, ended(2, tid(2), status, { r: 2 }, error), diamond)).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(diamond, [["completed", tid(0), SOURCE], ["completed", tid(1), { l: 1 }], rightAfter, ["running", tid(3)]]),
				current_stage: 3, completed_stages: status === "completed" ? [0, 1, 2] : [0, 1], progress: 0.75, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(diamond, 3, 0, { upstream: { left: upstream(diamond, 1, "completed", { l: 1 }), right: rightUpstream } }, JOIN_TASK)]
		});
	});

	test("the optional branch having failed, the join completing completes the run", () => {
		const run = branches(["completed", tid(1), { l: 1 }], ["failed", tid(2), null, "oom"], ["running", tid(3)]);
		expect(decide(run, ended(3, tid(3), "completed", { out: true }), diamond)).toStrictEqual({
			change: written(run, {
				status: "completed",
				stages: stagesOf(diamond, [["completed", tid(0), SOURCE], ["completed", tid(1), { l: 1 }], ["failed", tid(2), null, "oom"], ["completed", tid(3), { out: true }]]),
				current_stage: null, completed_stages: [0, 1, 3], progress: 1, finished_at: NOW, notification_due: true
			}),
			effects: [ANNOUNCE, NOTIFY]
		});
	});

	test("the required branch failing skips the join at once, while the other branch keeps going", () => {
		const run = branches(["running", tid(1)], ["running", tid(2)]);
		const afterLeft: StageSpec[] = [["completed", tid(0), SOURCE], ["failed", tid(1), null, "bad rows"], ["running", tid(2)], ["skipped", null, null, "required stage 1 (left) failed"]];
		const decision = decide(run, ended(1, tid(1), "failed", null, "bad rows"), diamond);
		expect(decision).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(diamond, afterLeft),
				current_stage: 2, completed_stages: [0], progress: 0.75, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE]
		});

		const next = { ...run, ...("change" in decision ? decision.change : {}) } as StoredRun;
		expect(decide(next, ended(2, tid(2), "completed", { r: 2 }), diamond)).toStrictEqual({
			change: written(next, {
				status: "failed",
				stages: stagesOf(diamond, [afterLeft[0], afterLeft[1], ["completed", tid(2), { r: 2 }], afterLeft[3]]),
				current_stage: null, completed_stages: [0, 2], progress: 1, finished_at: NOW, notification_due: true
			}),
			effects: [ANNOUNCE, NOTIFY]
		});
	});
});

// ---------- stage-start-failed ----------

describe("stage-start-failed", () => {
	test("a required first stage: it fails with the reason, the rest is skipped, the run fails", () => {
		const run = runOf(sequential, "running", [["running", tid(0)], ["waiting"], ["waiting"]], QUIET);
		expect(decide(run, { type: "stage-start-failed", index: 0, taskId: tid(0), reason: "tasks unavailable" })).toStrictEqual({
			change: written(run, {
				status: "failed",
				stages: stagesOf(sequential, [
					["failed", tid(0), null, "could not start the stage's task: tasks unavailable"],
					["skipped", null, null, "required stage 0 (fetch) failed"],
					["skipped", null, null, "required stage 1 (clean) skipped"]
				]),
				current_stage: null, completed_stages: [], progress: 1, finished_at: NOW, notification_due: false
			}),
			effects: [ANNOUNCE]
		});
	});

	test("an optional stage: it fails, the run goes on", () => {
		const run = runOf(diamond, "running", [["completed", tid(0), { rows: 10 }], ["running", tid(1)], ["running", tid(2)], ["waiting"]]);
		expect(decide(run, { type: "stage-start-failed", index: 2, taskId: tid(2), reason: "no analysis agent" }, diamond)).toStrictEqual({
			change: written(run, {
				status: "running",
				stages: stagesOf(diamond, [["completed", tid(0), { rows: 10 }], ["running", tid(1)], ["failed", tid(2), null, "could not start the stage's task: no analysis agent"], ["waiting"]]),
				current_stage: 1, completed_stages: [0], progress: 0.5, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE]
		});
	});

	test.each<[string, { index: number; taskId: string }]>([
		["another generation's task id", { index: 1, taskId: tid(1, 1) }],
		["a stage that is not running", { index: 0, taskId: tid(0) }],
		["a stage the run does not have", { index: 9, taskId: tid(9) }]
	])("stale: %s", (_what, ref) => {
		expect(decide(RUNS.running, { type: "stage-start-failed", ...ref, reason: "x" })).toStrictEqual(NOTHING);
	});
});

// ---------- reconcile ----------

describe("reconcile", () => {
	const atClean = RUNS.running;
	const cleanTask = creates(sequential, 1, 0, { upstream: { fetch: upstream(sequential, 0, "completed", { rows: 3 }) } }, { retry_count: 5 });

	test("a task never made is made again under the same id, with no write when nothing else changed", () => {
		expect(decide(atClean, { type: "reconcile", tasks: { 1: null } })).toStrictEqual({ change: null, effects: [cleanTask] });
	});

	test.each<TaskStatus>(["pending", "running", "retrying"])("a task still %s leaves the stage running: nothing to do", status => {
		expect(decide(atClean, { type: "reconcile", tasks: { 1: task(tid(1), status) } })).toStrictEqual(NOTHING);
	});

	test.each<[string, Record<number, ReturnType<typeof task> | null>]>([
		["no running stage's task reported", {}],
		["a task reported for a stage that is not running", { 0: task(tid(0), "failed", null, "late") }]
	])("%s: nothing to do", (_what, tasks) => {
		expect(decide(atClean, { type: "reconcile", tasks })).toStrictEqual(NOTHING);
	});

	test("an ended task is taken; a missing one beside it is made again under its id, after the announce", () => {
		const run = runOf(diamond, "running", [["completed", tid(0), { rows: 10 }], ["running", tid(1)], ["running", tid(2)], ["waiting"]]);
		expect(decide(run, { type: "reconcile", tasks: { 1: null, 2: task(tid(2), "completed", { r: 2 }) } }, diamond)).toStrictEqual({
			change: written(run, {
				status: "running",
				stages: stagesOf(diamond, [["completed", tid(0), { rows: 10 }], ["running", tid(1)], ["completed", tid(2), { r: 2 }], ["waiting"]]),
				current_stage: 1, completed_stages: [0, 2], progress: 0.5, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(diamond, 1, 0, { upstream: { source: upstream(diamond, 0, "completed", { rows: 10 }) }, parameters: LEFT_PARAMETERS })]
		});
	});

	test("a run left running with nothing more to run settles", () => {
		const run = runOf(sequential, "running", [["completed", tid(0), 1], ["completed", tid(1), 2], ["completed", tid(2), 3]], QUIET);
		expect(decide(run, { type: "reconcile", tasks: {} })).toStrictEqual({
			change: written(run, {
				status: "completed", stages: run.stages,
				current_stage: null, completed_stages: [0, 1, 2], progress: 1, finished_at: NOW, notification_due: false
			}),
			effects: [ANNOUNCE]
		});
	});

	test("a run stored before its start was decided starts now", () => {
		const run = fresh(sequential);
		expect(decide(run, { type: "reconcile", tasks: {} })).toStrictEqual({
			change: written(run, {
				status: "running", stages: stagesOf(sequential, [["running", tid(0)], ["waiting"], ["waiting"]]),
				current_stage: 0, completed_stages: [], progress: 0, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(sequential, 0, 0)]
		});
	});
});

// ---------- retry ----------

describe("retry", () => {
	test("a new generation: re-run stages get new task ids, completed ones keep their results", () => {
		const run = runOf(
			diamond,
			"cancelled",
			[["completed", tid(0, 2), { rows: 10 }], ["cancelled", tid(1, 2), null, "run cancelled"], ["completed", tid(2, 2), { r: 2 }], ["cancelled", null, null, "run cancelled"]],
			{ attempt: 2, notification_due: false }
		);
		expect(decide(run, { type: "retry" }, diamond)).toStrictEqual({
			change: written(run, {
				status: "running", attempt: 3,
				stages: stagesOf(diamond, [["completed", tid(0, 2), { rows: 10 }], ["running", tid(1, 3)], ["completed", tid(2, 2), { r: 2 }], ["waiting"]]),
				current_stage: 1, completed_stages: [0, 2], progress: 0.5, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(diamond, 1, 3, { upstream: { source: upstream(diamond, 0, "completed", { rows: 10 }) }, parameters: LEFT_PARAMETERS })]
		});
	});

	test("a failed first stage: everything runs again from the start", () => {
		const run = runOf(sequential, "failed", [["failed", tid(0), null, "x"], ["skipped", null, null, "s"], ["skipped", null, null, "s"]], QUIET);
		expect(decide(run, { type: "retry" })).toStrictEqual({
			change: written(run, {
				status: "running", attempt: 1, stages: stagesOf(sequential, [["running", tid(0, 1)], ["waiting"], ["waiting"]]),
				current_stage: 0, completed_stages: [], progress: 0, finished_at: null, notification_due: false
			}),
			effects: [ANNOUNCE, creates(sequential, 0, 1)]
		});
	});
});

// ---------- cancel ----------

describe("cancel", () => {
	const both = (fields: Partial<StoredRun> = {}) =>
		runOf(diamond, "running", [["completed", tid(0), { rows: 10 }], ["running", tid(1)], ["running", tid(2)], ["waiting"]], fields);
	const cancelled: StageSpec[] = [
		["completed", tid(0), { rows: 10 }], ["cancelled", tid(1), null, "run cancelled"], ["cancelled", tid(2), null, "run cancelled"], ["cancelled", null, null, "run cancelled"]
	];

	test.each<[string, Partial<StoredRun>, boolean, RunEffect[]]>([
		["with a notification", {}, true, [ANNOUNCE, cancelTask(tid(1)), cancelTask(tid(2)), NOTIFY]],
		["without one", QUIET, false, [ANNOUNCE, cancelTask(tid(1)), cancelTask(tid(2))]]
	])("running stages' tasks are cancelled after the write, waiting stages cancelled without a task (%s)", (_what, fields, due, effects) => {
		const run = both(fields);
		expect(decide(run, { type: "cancel" }, diamond)).toStrictEqual({
			change: written(run, {
				status: "cancelled", stages: stagesOf(diamond, cancelled),
				current_stage: null, completed_stages: [0], progress: 0.25, finished_at: NOW, notification_due: due
			}),
			effects
		});
	});

	test("a run that never started has no task to cancel", () => {
		const run = fresh(sequential);
		expect(decide(run, { type: "cancel" })).toStrictEqual({
			change: written(run, {
				status: "cancelled",
				stages: stagesOf(sequential, [["cancelled", null, null, "run cancelled"], ["cancelled", null, null, "run cancelled"], ["cancelled", null, null, "run cancelled"]]),
				current_stage: null, completed_stages: [], progress: 0, finished_at: NOW, notification_due: true
			}),
			effects: [ANNOUNCE, NOTIFY]
		});
	});
});

// ---------- notified ----------

describe("notified: only the end whose notifications are due", () => {
	test.each<[string, Partial<StoredRun>, string | null, RunDecision]>([
		["due, this end", {}, BEFORE, { change: { notification_due: false }, effects: [] }],
		["due, an earlier end", {}, "2024-01-01T00:01:00.000Z", NOTHING],
		["due, no end named", {}, null, NOTHING],
		["already sent", { notification_due: false }, BEFORE, NOTHING],
		["no notification at all", QUIET, BEFORE, NOTHING]
	])("%s", (_what, fields, finishedAt, expected) => {
		expect(decide({ ...RUNS.completed, ...fields }, { type: "notified", finishedAt })).toStrictEqual(expected);
	});
});
