/**
 * A pipeline run as a decider, in the manner of Conductor's DeciderService: `decideRun(run, event,
 * context)` says, as data, what the run becomes (which stages start, skip or end, and whether the
 * run is over) and what must happen once that is stored: stage tasks to make or cancel, progress
 * to announce, notifications to send. The pipelines service executes those effects; a stage's
 * task is made only after the run that names it was committed, under an id derived from the run,
 * the stage and the run's generation, so making it again (a crash, a lost compare-and-set) finds
 * the first one instead of making another.
 */
import { mayManage } from "../access";
import { change, noChange, reject, type Decision } from "../decision";
import type { Pipeline, Principal, RunStage } from "../../types";
import { advance, stagesForRetry } from "./dag";
import {
	acceptsTaskOutcome, cancelledStages, isRunFinished, settle, stageAfterTask, stageTaskParams,
	type StageTaskOutcome, type StageTaskParams, type StoredRun
} from "./runs";

export type RunEvent =
	/** Just executed: its first stages start. */
	| { type: "start" }
	/** A stage task ended. */
	| { type: "task-ended"; task: StageTaskOutcome & { stage: number | null } }
	/** After a restart: each running stage's task as found now (null: it was never made). */
	| { type: "reconcile"; tasks: Record<number, StageTaskOutcome | null> }
	/** A stage's task could not be made: the stage fails with the reason, and a retry starts it again. */
	| { type: "stage-start-failed"; index: number; taskId: string; reason: string }
	/** `by` must be the run's executor, an admin, or one of the pipeline's managers. */
	| { type: "cancel"; by?: Principal }
	/** A failed or cancelled run runs its failed stages again, keeping the completed ones. Who may: as for cancel. */
	| { type: "retry"; by?: Principal }
	/** The notifications of the run's end (at `finishedAt`) were sent, or tried to the end. */
	| { type: "notified"; finishedAt: string | null };

export type RunEffect =
	/** Broadcast `pipeline.progress` with the stored run. */
	| { type: "announce" }
	| { type: "create-stage-task"; index: number; params: StageTaskParams; taskId: string }
	| { type: "cancel-task"; taskId: string }
	/** Send the run's webhook and email. */
	| { type: "notify" };

export type RunDecision = Decision<StoredRun, RunEffect>;

export interface RunContext {
	pipeline: Pipeline;
	now: Date;
	/** The id of stage `index`'s task in the run's generation `attempt`. */
	stageTaskId(runId: string, index: number, attempt: number): string;
}

/**
 * The run with `stages` taken as far as they go now: what can no longer run is skipped, every
 * ready stage is marked running under its task's id (with the effect that makes the task), and
 * the run settles when nothing is left to run.
 */
function advanced(run: StoredRun, stages: RunStage[], ctx: RunContext, effects: RunEffect[] = []): { run: StoredRun; effects: RunEffect[] } {
	const step = advance(ctx.pipeline, stages);
	let next = step.stages;
	const creates: RunEffect[] = [];
	for (const index of step.ready) {
		const taskId = ctx.stageTaskId(run.run_id, index, run.attempt);
		creates.push({ type: "create-stage-task", index, taskId, params: stageTaskParams(ctx.pipeline, run, next, index) });
		next = next.map(stage => (stage.index === index ? { ...stage, status: "running", task_id: taskId, result: null, error: null } : stage));
	}
	const settled = settle(run, next, step.runStatus, ctx.now.toISOString());
	const finished = settled.notification_due && !run.notification_due;
	return { run: settled, effects: [{ type: "announce" }, ...effects, ...creates, ...(finished ? [{ type: "notify" } as const] : [])] };
}

function changed({ run, effects }: { run: StoredRun; effects: RunEffect[] }): RunDecision {
	return change(run, effects);
}

export function decideRun(run: StoredRun, event: RunEvent, ctx: RunContext): RunDecision {
	if (run.pipeline_id !== ctx.pipeline.pipeline_id) return reject("NOT_FOUND", `Run '${run.run_id}' not found`, { id: run.run_id });
	if ((event.type === "cancel" || event.type === "retry") && event.by && !mayManage(event.by, run.created_by ?? null, ctx.pipeline.permissions?.manage))
		return reject("FORBIDDEN", `Only the run's executor, an admin or the pipeline's managers may ${event.type} it`);
	switch (event.type) {
		case "start":
			return run.status === "running" && run.stages.every(stage => stage.status === "waiting") ? changed(advanced(run, run.stages, ctx)) : noChange();
		case "task-ended": {
			if (!acceptsTaskOutcome(run, event.task)) return noChange();
			return changed(advanced(run, run.stages.map(stage => (stage.index === event.task.stage ? stageAfterTask(stage, event.task) : stage)), ctx));
		}
		case "reconcile": {
			if (run.status !== "running") return noChange();
			const found = run.stages.map(stage => {
				if (stage.status !== "running" || !stage.task_id || !Object.hasOwn(event.tasks, stage.index)) return stage;
				const task = event.tasks[stage.index];
				// Never made (a crash between the commit and the task): start it again, under the same id.
				return task ? stageAfterTask(stage, task) : { ...stage, status: "waiting" as const, task_id: null };
			});
			const next = advanced(run, found, ctx);
			const unchanged = next.run.status === run.status && JSON.stringify(next.run.stages) === JSON.stringify(run.stages);
			return unchanged ? noChange(next.effects.filter(effect => effect.type === "create-stage-task")) : changed(next);
		}
		case "stage-start-failed": {
			const stage = run.stages[event.index];
			if (run.status !== "running" || stage?.status !== "running" || stage.task_id !== event.taskId) return noChange();
			const failed: RunStage = { ...stage, status: "failed", result: null, error: `could not start the stage's task: ${event.reason}` };
			return changed(advanced(run, run.stages.map(s => (s.index === event.index ? failed : s)), ctx));
		}
		case "cancel": {
			if (isRunFinished(run.status)) return reject("CONFLICT", `Run is ${run.status}`, { status: run.status });
			// After the run is stored as cancelled, so the tasks' own cancellations come in as old news.
			const cancels = run.stages.flatMap(stage => (stage.status === "running" && stage.task_id ? [{ type: "cancel-task", taskId: stage.task_id } as const] : []));
			const settled = settle(run, cancelledStages(run.stages), "cancelled", ctx.now.toISOString());
			return change(settled, [{ type: "announce" }, ...cancels, ...(settled.notification_due ? [{ type: "notify" } as const] : [])]);
		}
		case "retry": {
			if (run.status !== "failed" && run.status !== "cancelled")
				return reject("CONFLICT", `Only a failed or cancelled run can be retried; this one is ${run.status}`, { status: run.status });
			// A new generation: its stage tasks get new ids; completed stages keep their results.
			const again: StoredRun = { ...run, status: "running", attempt: run.attempt + 1, finished_at: null, notification_due: false };
			return changed(advanced(again, stagesForRetry(run.stages), ctx));
		}
		case "notified":
			return run.notification_due && run.finished_at === event.finishedAt ? change({ notification_due: false }) : noChange();
	}
}
