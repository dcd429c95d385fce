/**
 * Pipeline runs on plain data: the stored record, its wire views, what a stage's task looks like,
 * and how a task's outcome lands on its stage; `decide.ts` puts them together into the run's
 * decisions. The pipelines service owns the I/O (store, tasks, events).
 */
import { completedStages, currentStage, dependencyResults, progressOf } from "./dag";
import type { Pipeline, PipelineExecution, PipelineRun, RunStage, RunStatus, Task, TaskStatus, TaskSubmission } from "../../types";
import type { StagePayload, UpstreamEntry } from "../../stage-contract";

/**
 * Retries a stage's task gets when its definition says nothing: a transient agent failure should
 * not throw away a whole multi-stage run, while a non-retryable failure still fails at once.
 */
export const DEFAULT_STAGE_RETRY_COUNT = 2;

/** tasks.create bounds `timeout` (s); a longer stage timeout is capped rather than refused mid-run. */
export const MAX_STAGE_TIMEOUT_SEC = 7 * 24 * 3600;

/** The stored record: the wire run plus what the engine needs to stay consistent and idempotent. */
export type StoredRun = PipelineRun & {
	/** Compare-and-set guard: bumped on every write, so only one node's transition wins. */
	version: number;
	/** 0 at execute, +1 per retry; part of every stage task's idempotency key. */
	attempt: number;
	/** The run ended with notifications to send that have not been tried to the end yet. */
	notification_due: boolean;
};

/** `GET /pipelines/{id}/runs/{run_id}`: the run without its notification targets (addresses stay private). */
export type RunView = Omit<PipelineRun, "notification">;

/** One entry of `GET /pipelines/{id}`'s `runs`. */
export interface RunSummary {
	run_id: string;
	created_by: string | null;
	status: RunStatus;
	current_stage: number | null;
	completed_stages: number[];
	progress: number;
	created_at: string;
	finished_at: string | null;
}

/** What `tasks.create` gets for one stage. */
export type StageTaskParams = TaskSubmission & { run_id: string; pipeline_id: string; stage: number };

export const FINISHED_RUN_STATUSES: readonly RunStatus[] = ["completed", "failed", "cancelled"];

export function isRunFinished(status: RunStatus): boolean {
	return FINISHED_RUN_STATUSES.includes(status);
}

/** The fields of a run that follow from its stages. */
export function derivedFields(stages: RunStage[]): Pick<PipelineRun, "current_stage" | "completed_stages" | "progress"> {
	return { current_stage: currentStage(stages), completed_stages: completedStages(stages), progress: progressOf(stages) };
}

/** A fresh run, before any stage started: persisted as is, then advanced by the run's actor. */
export function newRun(runId: string, pipeline: Pipeline, execution: PipelineExecution, now: string, createdBy: string | null = null): StoredRun {
	const stages = pipeline.stages.map((stage, index): RunStage => ({ index, name: stage.name, status: "waiting", task_id: null, result: null, error: null }));
	const { webhook, email } = execution.notification ?? {};
	const notification = webhook || email ? { ...(webhook ? { webhook } : {}), ...(email ? { email } : {}) } : null;
	return {
		run_id: runId,
		created_by: createdBy,
		pipeline_id: pipeline.pipeline_id,
		status: "running",
		...derivedFields(stages),
		stages,
		input_data: execution.input_data ?? {},
		parameters: execution.parameters ?? {},
		notification,
		created_at: now,
		updated_at: now,
		finished_at: null,
		version: 1,
		attempt: 0,
		notification_due: false
	};
}

export function runView(run: PipelineRun): RunView {
	return {
		run_id: run.run_id,
		created_by: run.created_by ?? null,
		pipeline_id: run.pipeline_id,
		status: run.status,
		current_stage: run.current_stage,
		completed_stages: run.completed_stages,
		progress: run.progress,
		stages: run.stages.map(stage => ({
			index: stage.index,
			name: stage.name,
			status: stage.status,
			task_id: stage.task_id,
			result: stage.result ?? null,
			error: stage.error ?? null
		})),
		input_data: run.input_data,
		parameters: run.parameters,
		created_at: run.created_at,
		updated_at: run.updated_at,
		finished_at: run.finished_at
	};
}

export function runSummary(run: PipelineRun): RunSummary {
	return {
		run_id: run.run_id,
		created_by: run.created_by ?? null,
		status: run.status,
		current_stage: run.current_stage,
		completed_stages: run.completed_stages,
		progress: run.progress,
		created_at: run.created_at,
		finished_at: run.finished_at
	};
}

/** The level of `input_data` and `parameters` in a stage task's params (the params are level 1, `payload` 2). */
export const STAGE_PAYLOAD_FIELD_LEVEL = 3;

/** The task that runs stage `index`: run input and parameters (stage parameters win), upstream results. */
export function stageTaskParams(
	pipeline: Pipeline,
	run: Pick<PipelineRun, "run_id" | "pipeline_id" | "input_data" | "parameters">,
	stages: RunStage[],
	index: number
): StageTaskParams {
	const stage = pipeline.stages[index];
	const upstream: Record<string, UpstreamEntry> = {};
	for (const [name, entry] of Object.entries(dependencyResults(pipeline, stages, index)))
		upstream[name] = { index: entry.index, type: pipeline.stages[entry.index]?.type ?? name, status: entry.status, result: entry.result };
	const params: StageTaskParams = {
		pipeline_id: run.pipeline_id,
		run_id: run.run_id,
		stage: index,
		type: stage.type,
		payload: {
			input_data: run.input_data,
			parameters: { ...run.parameters, ...stage.parameters },
			upstream,
			stage: { index, name: stage.name, type: stage.type }
		} satisfies StagePayload,
		retry_count: stage.retry_count ?? DEFAULT_STAGE_RETRY_COUNT
	};
	if (stage.timeout !== undefined) params.timeout = Math.min(stage.timeout, MAX_STAGE_TIMEOUT_SEC);
	if (stage.required_capabilities?.length) params.required_capabilities = stage.required_capabilities;
	return params;
}

/** The part of a task its stage needs. */
export type StageTaskOutcome = Pick<Task, "task_id" | "status" | "result" | "error">;

const STAGE_STATUS_OF_TASK: Partial<Record<TaskStatus, RunStage["status"]>> = { completed: "completed", failed: "failed", cancelled: "cancelled" };

/** The stage once its task ended; the same stage while the task is still open. */
export function stageAfterTask(stage: RunStage, task: StageTaskOutcome): RunStage {
	const status = STAGE_STATUS_OF_TASK[task.status];
	if (!status) return { ...stage, status: "running", task_id: task.task_id };
	return {
		...stage,
		status,
		task_id: task.task_id,
		result: status === "completed" ? (task.result ?? null) : null,
		error: status === "completed" ? null : (task.error ?? `task ${task.status}`)
	};
}

/** Is this task's end news for the run? Not when the run is over or the stage has moved on to another task (stale). */
export function acceptsTaskOutcome(run: PipelineRun, task: Pick<Task, "task_id" | "stage">): boolean {
	if (run.status !== "running" || task.stage === null) return false;
	const stage = run.stages[task.stage];
	return stage !== undefined && stage.status === "running" && stage.task_id === task.task_id;
}

/** The run's fields once it is in `stages` with `runStatus` (null = still running). */
export function settle(run: StoredRun, stages: RunStage[], runStatus: RunStatus | null, now: string): StoredRun {
	const status = runStatus ?? "running";
	const finished = isRunFinished(status);
	return {
		...run,
		status,
		stages,
		...derivedFields(stages),
		updated_at: now,
		finished_at: finished ? now : null,
		notification_due: finished && run.notification !== null
	};
}

/** A cancelled run: open stages cancelled (running ones keep their task id, to be cancelled too). */
export function cancelledStages(stages: RunStage[]): RunStage[] {
	return stages.map(stage =>
		stage.status === "running" || stage.status === "waiting" ? { ...stage, status: "cancelled", error: "run cancelled" } : stage
	);
}
