/**
 * The task lifecycle as a decider: `decideTask(task, event, context)` says what a task becomes
 * after an event and what must happen once that change is stored; `newTask` makes the record a
 * submission creates. Pure: the clock, the randomness of backoff jitter and the settings come in
 * through `TaskContext`, and the tasks service executes the effects.
 */
import { mayManage, mayReportOnTask } from "../access";
import { retryDelayMs, type BackoffOptions } from "../backoff";
import { change, noChange, reject, type Decision } from "../decision";
import type { LogLevelName, Principal, Priority, Task, TaskStatus } from "../../types";
import { afterAttemptFailure, canTransition, isTerminal } from "./state-machine";

/** How an attempt ended badly; `retryable: false` fails the task at once. */
export interface TaskFailure {
	code: "EXECUTION_ERROR" | "TIMEOUT" | "DELIVERY_FAILED" | "AGENT_LOST";
	message: string;
	retryable: boolean;
	/** The agent's own code for what went wrong (e.g. PATH_OUTSIDE_DATA_ROOT), passed on in the error event. */
	reason?: string;
}

export type TaskEvent =
	/** The dispatcher gives the task to an agent: the next attempt begins. */
	| { type: "claim"; agent: { id: string; name: string } }
	/** This node takes up a running attempt it did not claim (after a restart or an adoption). */
	| { type: "start"; agentCanReport: boolean }
	| { type: "progress"; progress: number; message?: string; by?: Principal }
	/** `attempt` unset: a report on the current attempt, which must be running (else 409). Set: a result for that attempt, ignored once stale. */
	| { type: "complete"; result: unknown; attempt?: number; by?: Principal }
	| { type: "fail"; failure: TaskFailure; attempt?: number; by?: Principal }
	| { type: "timeout"; attempt: number }
	/** A retrying task's backoff is over. */
	| { type: "retry-due" }
	/** `by` must be its creator, an admin, or one of its pipeline's managers. */
	| { type: "cancel"; by?: Principal }
	/** A failed or cancelled task runs again, with its retries anew. Who may: as for cancel. Not a stage task: its run is retried instead. */
	| { type: "retry"; by?: Principal }
	/** Its agent went offline, was removed, or its node left. */
	| { type: "agent-lost"; agentId: string; reason: string }
	/** The agent could not be reached at all: back to the queue after `delayMs`, the attempt not counted when it never got there. */
	| { type: "requeue"; agentId: string; reason: string; delayMs: number; undoAttempt: boolean };

export type TaskEffect =
	/** Broadcast `task.updated` with the stored task. */
	| { type: "announce" }
	| { type: "announce-failure"; failure: TaskFailure }
	| { type: "deliver"; agentId: string; attempt: number }
	/** Fail the attempt as timed out at `at` (epoch ms) unless it ended before. */
	| { type: "arm-attempt-timer"; attempt: number; at: number }
	/** Run a dispatch pass at `at` (epoch ms): a backoff or a re-queue delay ends then. */
	| { type: "arm-retry-timer"; at: number }
	| { type: "clear-attempt-timer" }
	| { type: "clear-timers" }
	/** The agent's count of running tasks changed. */
	| { type: "agent-load"; agentId: string }
	| { type: "dispatch" };

export type TaskDecision = Decision<TaskRecord, TaskEffect>;

/**
 * A task as its rules see it: the wire task, who besides its creator may manage it (a stage task:
 * its pipeline's managers), and the attempts spent before its last retry (its retries count from there).
 */
export type TaskRecord = Task & { managers?: string[]; attempt_offset?: number };

export interface TaskContext {
	now: Date;
	retry: BackoffOptions;
	/** For the backoff's jitter. */
	random(): number;
}

export const MAX_TASK_LOGS = 200;

export interface NewTaskInput {
	task_id: string;
	created_by?: string | null;
	managers?: string[];
	pipeline_id?: string | null;
	run_id?: string | null;
	stage?: number | null;
	type: string;
	payload?: Record<string, unknown>;
	priority?: Priority;
	timeout: number;
	retry_count?: number;
	required_capabilities?: string[];
	idempotency_key?: string | null;
}

function withLog(task: Pick<Task, "logs">, level: LogLevelName, message: string, now: Date): Task["logs"] {
	return [...task.logs, { timestamp: now.toISOString(), level, message }].slice(-MAX_TASK_LOGS);
}

/** A submitted task, pending, and what follows its creation. */
export function newTask(input: NewTaskInput, now: Date): { task: TaskRecord; effects: TaskEffect[] } {
	const at = now.toISOString();
	const task: TaskRecord = {
		task_id: input.task_id,
		created_by: input.created_by ?? null,
		...(input.managers?.length ? { managers: input.managers } : {}),
		pipeline_id: input.pipeline_id ?? null,
		run_id: input.run_id ?? null,
		stage: input.stage ?? null,
		type: input.type,
		payload: input.payload ?? {},
		priority: input.priority ?? "medium",
		timeout: input.timeout,
		retry_count: input.retry_count ?? 0,
		required_capabilities: [...new Set(input.required_capabilities ?? [])],
		status: "pending",
		progress: 0,
		assigned_agent: null,
		attempt: 0,
		result: null,
		error: null,
		logs: withLog({ logs: [] }, "info", "Task submitted", now),
		idempotency_key: input.idempotency_key ?? null,
		created_at: at,
		started_at: null,
		updated_at: at,
		finished_at: null,
		next_attempt_at: null
	};
	return { task, effects: [{ type: "announce" }, { type: "dispatch" }] };
}

/** A status change the state machine allows, else 409 naming both ends. */
function move(task: TaskRecord, to: TaskStatus, fields: Partial<TaskRecord>, effects: TaskEffect[]): TaskDecision {
	if (!canTransition(task.status, to))
		return reject("CONFLICT", `Task cannot go from '${task.status}' to '${to}'`, { from: task.status, to });
	return change({ ...fields, status: to }, effects);
}

function notRunning(task: TaskRecord): TaskDecision {
	return reject("CONFLICT", `Task is ${task.status}, not running`, { status: task.status });
}

/** Effects of any end of the running attempt on `agentId`. */
function attemptEnded(agentId: string | null): TaskEffect[] {
	return [{ type: "announce" }, { type: "clear-attempt-timer" }, ...(agentId ? [{ type: "agent-load", agentId } as const] : [])];
}

/**
 * Is this report about the attempt now running? A caller's report must be (else 409, naming a
 * callback token's own attempt when it is over); a result the runtime delivers for an earlier
 * attempt is dropped without a word.
 */
function reportOn(task: TaskRecord, event: { attempt?: number; by?: Principal }): TaskDecision | "current" {
	if (event.by && !mayReportOnTask(event.by, task.task_id, task.assigned_agent)) return reject("FORBIDDEN", "Not this agent's task");
	if (event.attempt === undefined) {
		if (task.status !== "running") return notRunning(task);
		const tokenAttempt = event.by?.attempt;
		if (tokenAttempt !== undefined && tokenAttempt !== task.attempt)
			return reject("CONFLICT", `Attempt ${tokenAttempt} of this task is over; it is on attempt ${task.attempt}`, { attempt: task.attempt });
		return "current";
	}
	return task.status === "running" && task.attempt === event.attempt ? "current" : noChange();
}

function finishWithFailure(task: TaskRecord, failure: TaskFailure, ctx: TaskContext): TaskDecision {
	const attempt = task.attempt;
	const ended = [...attemptEnded(task.assigned_agent), { type: "announce-failure", failure } as const];
	if (afterAttemptFailure({ attempt: attempt - (task.attempt_offset ?? 0), retry_count: task.retry_count }, failure.retryable) === "failed")
		return move(task, "failed", {
			error: failure.message,
			finished_at: ctx.now.toISOString(),
			logs: withLog(task, "error", `Attempt ${attempt} failed: ${failure.message}; giving up`, ctx.now)
		}, [...ended, { type: "clear-timers" }, { type: "dispatch" }]);
	const delay = retryDelayMs(attempt, ctx.retry, ctx.random);
	const at = ctx.now.getTime() + delay;
	return move(task, "retrying", {
		error: failure.message,
		next_attempt_at: new Date(at).toISOString(),
		logs: withLog(task, "warn", `Attempt ${attempt} failed: ${failure.message}; retrying in ${delay} ms`, ctx.now)
	}, [...ended, { type: "arm-retry-timer", at }, { type: "dispatch" }]);
}

function backToQueue(task: TaskRecord, agentId: string, reason: string, ctx: TaskContext, delayMs = 0, undoAttempt = false): TaskDecision {
	if (task.status !== "running" || task.assigned_agent !== agentId) return noChange();
	const at = ctx.now.getTime() + delayMs;
	return move(task, "pending", {
		assigned_agent: null,
		progress: 0,
		next_attempt_at: delayMs ? new Date(at).toISOString() : null,
		...(undoAttempt ? { attempt: task.attempt - 1 } : {}),
		logs: withLog(task, "warn", `Agent ${agentId} ${reason}; re-queued after attempt ${task.attempt}`, ctx.now)
	}, [...attemptEnded(agentId), ...(delayMs ? [{ type: "arm-retry-timer", at } as const] : []), { type: "dispatch" }]);
}

export function decideTask(task: TaskRecord, event: TaskEvent, ctx: TaskContext): TaskDecision {
	switch (event.type) {
		case "claim": {
			if (task.status !== "pending" && task.status !== "retrying") return noChange();
			const attempt = task.attempt + 1;
			return move(task, "running", {
				assigned_agent: event.agent.id,
				attempt,
				progress: 0,
				started_at: ctx.now.toISOString(),
				next_attempt_at: null,
				logs: withLog(task, "info", `Attempt ${attempt} started on agent ${event.agent.name} (${event.agent.id})`, ctx.now)
			}, [
				{ type: "announce" },
				{ type: "agent-load", agentId: event.agent.id },
				{ type: "arm-attempt-timer", attempt, at: ctx.now.getTime() + task.timeout * 1000 },
				{ type: "deliver", agentId: event.agent.id, attempt }
			]);
		}
		case "start": {
			// A queued task waiting out a backoff or a re-queue delay needs its wake-up again.
			if (task.status !== "running") return noChange(task.next_attempt_at && !isTerminal(task.status) ? [{ type: "arm-retry-timer", at: Date.parse(task.next_attempt_at) }] : []);
			// A Moleculer call in flight died with its caller; an HTTP agent may still call back.
			if (!event.agentCanReport) return backToQueue(task, task.assigned_agent ?? "", "lost its dispatcher", ctx);
			const startedAt = Date.parse(task.started_at ?? task.updated_at);
			return noChange([{ type: "arm-attempt-timer", attempt: task.attempt, at: startedAt + task.timeout * 1000 }]);
		}
		case "progress": {
			const on = reportOn(task, { by: event.by });
			if (on !== "current") return on;
			return change({ progress: event.progress, ...(event.message ? { logs: withLog(task, "info", event.message, ctx.now) } : {}) }, [{ type: "announce" }]);
		}
		case "complete": {
			const on = reportOn(task, event);
			if (on !== "current") return on;
			return move(task, "completed", {
				result: event.result,
				// An earlier attempt's failure is history (in the logs), not the outcome.
				error: null,
				progress: 1,
				finished_at: ctx.now.toISOString(),
				logs: withLog(task, "info", `Attempt ${task.attempt} completed`, ctx.now)
			}, [...attemptEnded(task.assigned_agent), { type: "clear-timers" }, { type: "dispatch" }]);
		}
		case "fail": {
			const on = reportOn(task, event);
			return on === "current" ? finishWithFailure(task, event.failure, ctx) : on;
		}
		case "timeout":
			if (task.status !== "running" || task.attempt !== event.attempt) return noChange();
			return finishWithFailure(task, { code: "TIMEOUT", message: `Attempt ${task.attempt} timed out after ${task.timeout} s`, retryable: true }, ctx);
		case "retry-due":
			return noChange(task.status === "retrying" || task.status === "pending" ? [{ type: "dispatch" }] : []);
		case "cancel":
			if (event.by && !mayManage(event.by, task.created_by, task.managers))
				return reject("FORBIDDEN", "Only the task's creator, an admin or its pipeline's managers may cancel it");
			return move(task, "cancelled", { finished_at: ctx.now.toISOString(), next_attempt_at: null, logs: withLog(task, "warn", "Task cancelled", ctx.now) }, [
				...(task.status === "running" ? attemptEnded(task.assigned_agent) : [{ type: "announce" } as const]),
				{ type: "clear-timers" },
				{ type: "dispatch" }
			]);
		case "retry": {
			if (event.by && !mayManage(event.by, task.created_by, task.managers))
				return reject("FORBIDDEN", "Only the task's creator, an admin or its pipeline's managers may retry it");
			if (task.run_id !== null && task.stage !== null)
				return reject("CONFLICT", "A stage task runs again when its run is retried", { run_id: task.run_id, pipeline_id: task.pipeline_id });
			if (task.status !== "failed" && task.status !== "cancelled")
				return reject("CONFLICT", `Only a failed or cancelled task can be retried; this one is ${task.status}`, { status: task.status });
			return move(task, "pending", {
				attempt_offset: task.attempt,
				assigned_agent: null,
				progress: 0,
				error: null,
				result: null,
				finished_at: null,
				next_attempt_at: null,
				logs: withLog(task, "info", `Retried${event.by ? ` by ${event.by.sub}` : ""}: runs again after ${task.attempt} attempt(s), with ${task.retry_count} retries anew`, ctx.now)
			}, [{ type: "announce" }, { type: "dispatch" }]);
		}
		case "agent-lost":
			return backToQueue(task, event.agentId, event.reason, ctx);
		case "requeue":
			return backToQueue(task, event.agentId, event.reason, ctx, event.delayMs, event.undoAttempt);
	}
}
