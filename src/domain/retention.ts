/**
 * Retention (TASK_RETENTION_DAYS, RUN_RETENTION_DAYS): which finished records are old enough to go.
 *
 * - A standalone task (no run) goes once it finished longer ago than the task retention.
 * - A run goes once it finished longer ago than the run retention, and its finished stage tasks
 *   with it: a stage task never goes on its own while its run is there, so a run that is still
 *   going (or was retried) keeps every task it names.
 * - A task naming a run that is not there (its pipeline was removed, or the node stopped between
 *   a run's removal and its tasks') goes like a standalone task, once it finished longer ago than
 *   both retentions.
 *
 * "Finished" is the record's `finished_at`, which a retry clears; an open record never expires.
 * The sweeps (mixins/retention.mixin.ts) select candidates with a query shaped by these rules, keep
 * only those the rules say go, and remove them with the same conditions re-checked by the store.
 */
import { isRunFinished } from "./pipelines/runs";
import { isTerminal } from "./tasks/state-machine";
import type { RunStatus, TaskStatus } from "../types";

export const DAY_MS = 24 * 3600_000;

/** Rows one sweep step looks at and removes at once (one store statement). */
export const RETENTION_BATCH = 500;

export interface RetentionPolicy {
	taskMs: number;
	runMs: number;
}

export function retentionPolicy(days: { taskDays: number; runDays: number }): RetentionPolicy {
	return { taskMs: Math.round(days.taskDays * DAY_MS), runMs: Math.round(days.runDays * DAY_MS) };
}

/** How often a sweep runs: at least once a minute, and often enough that a record outlives its retention by a quarter at most (never more than once a second). */
export function sweepIntervalMs(retentionMs: number): number {
	return Math.max(1000, Math.min(60_000, Math.floor(retentionMs / 4)));
}

/** Records that finished before this instant (an ISO timestamp, compared as stored) have expired. */
export function finishedBefore(now: Date, retentionMs: number): string {
	return new Date(now.getTime() - retentionMs).toISOString();
}

function finishedLongAgo(finishedAt: string | null, now: Date, retentionMs: number): boolean {
	if (!finishedAt) return false;
	const at = Date.parse(finishedAt);
	return Number.isFinite(at) && now.getTime() - at > retentionMs;
}

type TaskFacts = { status: TaskStatus; run_id: string | null; finished_at: string | null };
type RunFacts = { status: RunStatus; finished_at: string | null };

/** A task without a run, finished longer ago than the task retention. */
export function isTaskExpired(task: TaskFacts, now: Date, policy: RetentionPolicy): boolean {
	return !task.run_id && isTerminal(task.status) && finishedLongAgo(task.finished_at, now, policy.taskMs);
}

/** The horizon of tasks whose run is gone: the longer retention, so neither rule removes a task earlier than it would. */
export function orphanRetentionMs(policy: RetentionPolicy): number {
	return Math.max(policy.taskMs, policy.runMs);
}

/** A task naming a run: it goes with that run; on its own only when the run is not there (`runExists` false). */
export function isOrphanTaskExpired(task: TaskFacts, runExists: boolean, now: Date, policy: RetentionPolicy): boolean {
	return Boolean(task.run_id) && !runExists && isTerminal(task.status) && finishedLongAgo(task.finished_at, now, orphanRetentionMs(policy));
}

/** A finished run, finished longer ago than the run retention. */
export function isRunExpired(run: RunFacts, now: Date, policy: RetentionPolicy): boolean {
	return isRunFinished(run.status) && finishedLongAgo(run.finished_at, now, policy.runMs);
}

/** A stage task removed with its (expired, removed) run: only a finished one; one still open goes later, as an orphan. */
export function goesWithRun(task: Pick<TaskFacts, "status">): boolean {
	return isTerminal(task.status);
}
