import {
	acceptsTaskOutcome, cancelledStages, DEFAULT_STAGE_RETRY_COUNT, MAX_STAGE_TIMEOUT_SEC, newRun, runSummary, runView, settle,
	stageAfterTask, stageTaskParams, type StoredRun
} from "../../src/domain/pipelines/runs";
import type { RunStage } from "../../src/types";
import { diamond, pipeline, task } from "../support/pipelines";

const NOW = "2024-01-01T00:00:00.000Z";

describe("newRun", () => {
	test("all stages waiting, inputs kept, notification only when it names a target", () => {
		const run = newRun("run-1", diamond, { input_data: { source: "x" }, parameters: { batch: 1 }, notification: {} }, NOW);
		expect(run).toMatchObject({
			run_id: "run-1", pipeline_id: "pipeline-1", status: "running", current_stage: null, completed_stages: [], progress: 0,
			input_data: { source: "x" }, parameters: { batch: 1 }, notification: null, version: 1, attempt: 0, notification_due: false, finished_at: null
		});
		expect(run.stages.map(s => [s.name, s.status, s.task_id])).toEqual([["source", "waiting", null], ["left", "waiting", null], ["right", "waiting", null], ["join", "waiting", null]]);
		expect(newRun("r", diamond, { notification: { webhook: "http://h/x" } }, NOW).notification).toEqual({ webhook: "http://h/x" });
		expect(newRun("r", diamond, {}, NOW)).toMatchObject({ input_data: {}, parameters: {} });
	});
});

describe("views", () => {
	test("runView has exactly the contract's fields; internals stay out", () => {
		const run = newRun("run-1", diamond, {}, NOW);
		const view = runView({ ...run, stages: run.stages.map(({ error: _e, ...rest }) => rest) });
		expect(Object.keys(view).sort()).toEqual(
			["completed_stages", "created_at", "created_by", "current_stage", "finished_at", "input_data", "parameters", "pipeline_id", "progress", "run_id", "stages", "status", "updated_at"]
		);
		expect(view.stages[0]).toEqual({ index: 0, name: "source", status: "waiting", task_id: null, result: null, error: null });
		expect(Object.keys(runSummary(run)).sort()).toEqual(["completed_stages", "created_at", "created_by", "current_stage", "finished_at", "progress", "run_id", "status"]);
	});
});

describe("stageTaskParams", () => {
	test("the first stage: run input, run parameters, no upstream, the default retries", () => {
		const run = newRun("run-1", diamond, { input_data: { source: "s" }, parameters: { side: "run", batch: 2 } }, NOW);
		expect(stageTaskParams(diamond, run, run.stages, 0)).toEqual({
			pipeline_id: "pipeline-1", run_id: "run-1", stage: 0, type: "data-ingestion", retry_count: DEFAULT_STAGE_RETRY_COUNT,
			payload: { input_data: { source: "s" }, parameters: { side: "run", batch: 2 }, upstream: {}, stage: { index: 0, name: "source", type: "data-ingestion" } }
		});
	});

	test("stage parameters win; upstream names every dependency with its type, status and result", () => {
		const run = newRun("run-1", diamond, { parameters: { side: "run", batch: 2 } }, NOW);
		const stages: RunStage[] = run.stages.map(s =>
			s.index === 1 ? { ...s, status: "completed", result: { rows: 3 } } : s.index === 2 ? { ...s, status: "failed", result: null, error: "x" } : s
		);
		expect(stageTaskParams(diamond, run, stages, 1).payload?.parameters).toEqual({ side: "left", batch: 2 });
		const join = stageTaskParams(diamond, run, stages, 3);
		expect(join).toMatchObject({ timeout: 30, retry_count: 0, required_capabilities: ["disk"], type: "output" });
		expect(join.payload?.upstream).toEqual({
			left: { index: 1, type: "transformation", status: "completed", result: { rows: 3 } },
			right: { index: 2, type: "analysis", status: "failed", result: null }
		});
	});

	test("a stage timeout beyond what tasks accept is capped", () => {
		const long = pipeline({ name: "long", stages: [{ name: "a", type: "processing", timeout: MAX_STAGE_TIMEOUT_SEC * 2 }] });
		const run = newRun("r", long, {}, NOW);
		expect(stageTaskParams(long, run, run.stages, 0).timeout).toBe(MAX_STAGE_TIMEOUT_SEC);
	});
});

describe("stageAfterTask", () => {
	const stage: RunStage = { index: 0, name: "a", status: "running", task_id: "t0", result: null, error: null };
	test("open tasks keep the stage running with that task", () => {
		for (const status of ["pending", "running", "retrying"] as const)
			expect(stageAfterTask({ ...stage, status: "waiting", task_id: null }, task("t9", status))).toEqual({ ...stage, task_id: "t9" });
	});
	test("an ended task sets the stage's outcome", () => {
		expect(stageAfterTask(stage, task("t0", "completed", { n: 1 }))).toEqual({ ...stage, status: "completed", result: { n: 1 }, error: null });
		expect(stageAfterTask(stage, task("t0", "failed", { partial: true }, "bad"))).toEqual({ ...stage, status: "failed", result: null, error: "bad" });
		expect(stageAfterTask(stage, task("t0", "cancelled"))).toEqual({ ...stage, status: "cancelled", result: null, error: "task cancelled" });
	});
});

describe("acceptsTaskOutcome", () => {
	const run = newRun("run-1", diamond, {}, NOW);
	const running: StoredRun = { ...run, stages: run.stages.map(s => (s.index === 0 ? { ...s, status: "running", task_id: "t0" } : s)) };
	test("only the running stage's own task, only while the run runs", () => {
		expect(acceptsTaskOutcome(running, { task_id: "t0", stage: 0 })).toBe(true);
		expect(acceptsTaskOutcome(running, { task_id: "old", stage: 0 })).toBe(false);
		expect(acceptsTaskOutcome(running, { task_id: "t0", stage: 1 })).toBe(false);
		expect(acceptsTaskOutcome(running, { task_id: "t0", stage: 9 })).toBe(false);
		expect(acceptsTaskOutcome(running, { task_id: "t0", stage: null })).toBe(false);
		expect(acceptsTaskOutcome({ ...running, status: "cancelled" }, { task_id: "t0", stage: 0 })).toBe(false);
	});
});

describe("settle and cancel", () => {
	test("settle derives the progress fields and marks notifications due only at the end", () => {
		const run = newRun("run-1", diamond, { notification: { email: "a@b.c" } }, NOW);
		const stages = run.stages.map(s => ({ ...s, status: s.index < 2 ? ("completed" as const) : ("running" as const) }));
		const going = settle(run, stages, null, "later");
		expect(going).toMatchObject({ status: "running", completed_stages: [0, 1], current_stage: 2, progress: 0.5, finished_at: null, notification_due: false, updated_at: "later" });
		const done = settle(run, stages.map(s => ({ ...s, status: "completed" as const })), "completed", "end");
		expect(done).toMatchObject({ status: "completed", progress: 1, current_stage: null, finished_at: "end", notification_due: true });
		expect(settle({ ...run, notification: null }, done.stages, "completed", "end").notification_due).toBe(false);
	});

	test("cancelling leaves ended stages alone and cancels open ones", () => {
		const stages: RunStage[] = [
			{ index: 0, name: "a", status: "completed", task_id: "t0", result: 1, error: null },
			{ index: 1, name: "b", status: "running", task_id: "t1", result: null, error: null },
			{ index: 2, name: "c", status: "waiting", task_id: null, result: null, error: null }
		];
		expect(cancelledStages(stages).map(s => [s.status, s.task_id])).toEqual([["completed", "t0"], ["cancelled", "t1"], ["cancelled", null]]);
	});
});
