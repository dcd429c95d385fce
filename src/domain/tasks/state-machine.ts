/**
 * The task state machine. Every status change goes through here, so a late or duplicate report
 * (say, a "complete" callback for a task already cancelled) is refused instead of applied.
 */
import type { TaskStatus } from "../../types";

const NEXT_STATUSES: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
	pending: ["running", "cancelled"],
	// Back to pending when its agent went offline or was removed: the task runs again (at-least-once).
	running: ["completed", "failed", "retrying", "pending", "cancelled"],
	// No retrying → failed: a task fails only at the end of an attempt, so its error is that attempt's.
	retrying: ["running", "pending", "cancelled"],
	completed: [],
	// Back to pending only by an explicit retry (POST /tasks/{id}/retry): it runs again with a fresh set of retries.
	failed: ["pending"],
	cancelled: ["pending"]
};

export const TERMINAL_STATUSES: readonly TaskStatus[] = ["completed", "failed", "cancelled"];
/** Waiting, running or about to run again: what an owner node drives and what the open-task quota counts. */
export const OPEN_STATUSES: TaskStatus[] = ["pending", "retrying", "running"];

/** Thrown on an illegal status change; the service answers it with 409 CONFLICT. */
export class IllegalTransitionError extends Error {
	readonly from: TaskStatus;
	readonly to: TaskStatus;

	constructor(from: TaskStatus, to: TaskStatus) {
		super(`Task cannot go from '${from}' to '${to}'`);
		this.name = "IllegalTransitionError";
		this.from = from;
		this.to = to;
	}
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
	// hasOwn: a status read from storage may be anything, even "constructor"
	return Object.hasOwn(NEXT_STATUSES, from) && NEXT_STATUSES[from].includes(to);
}

export function assertTransition(from: TaskStatus, to: TaskStatus): void {
	if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

export function isTerminal(status: TaskStatus): boolean {
	return TERMINAL_STATUSES.includes(status);
}

/** `retry_count` counts retries after the first attempt; nonsense values mean no retries. */
export function maxAttempts(retryCount: number): number {
	return Number.isFinite(retryCount) && retryCount > 0 ? Math.floor(retryCount) + 1 : 1;
}

/**
 * Where a task goes when its attempt number `attempt` (1-based, attempts started) failed or timed out.
 * A non-retryable failure (the agent says retrying cannot help) fails at once.
 */
export function afterAttemptFailure(
	task: { attempt: number; retry_count: number },
	retryable = true
): "retrying" | "failed" {
	if (!retryable) return "failed";
	return task.attempt < maxAttempts(task.retry_count) ? "retrying" : "failed";
}
