/**
 * Submission quotas per token subject: what counts, who is counted, when a submission is refused and
 * what the caller is told. Pure: the counts come from the runtime (src/runtime/quotas.ts).
 *
 * - `tasks_per_hour` (TASK_QUOTA_PER_HOUR): task submissions and pipeline executions share one
 *   budget per subject and hour, the hour starting with the subject's first submission in it.
 * - `open_tasks` (MAX_OPEN_TASKS_PER_SUBJECT): a task submission is admitted only while the subject
 *   has fewer pending, retrying and running tasks than the limit, so submissions never take it above
 *   the limit. A pipeline run's stage tasks belong to its executor and count toward that figure, but
 *   the engine's own calls are never refused: a run that started must be able to finish. While a
 *   run's stages are open, the executor can submit fewer tasks of its own.
 */
import type { Principal } from "../types";

export type QuotaName = "tasks_per_hour" | "open_tasks";

/** What one quota says about a submission (the answer's X-Quota-* headers, a refusal's details). */
export interface QuotaView {
	quota: QuotaName;
	limit: number;
	/** What is left once this submission is counted. */
	remaining: number;
	/** On a refusal: seconds until trying again can succeed. */
	retry_after_s?: number;
}

/**
 * A slot frees when one of the subject's tasks ends, which no clock foretells (a pending task may
 * wait for a capable agent indefinitely; a timed-out attempt may be retried): ask again soon.
 */
export const OPEN_TASKS_RETRY_AFTER_S = 5;

/** Whose budget a call spends: its token's subject; a trusted node's own calls (the engine) and anonymous ones spend none. */
export function quotaSubject(principal: Principal | null | undefined): string | null {
	if (!principal || principal.roles.includes("system")) return null;
	return principal.sub;
}

/** One more open task for a subject that has `open` now, under a limit of `limit`. */
export function openTasksVerdict(open: number, limit: number): { allowed: boolean; view: QuotaView } {
	if (open >= limit) return { allowed: false, view: { quota: "open_tasks", limit, remaining: 0, retry_after_s: OPEN_TASKS_RETRY_AFTER_S } };
	return { allowed: true, view: { quota: "open_tasks", limit, remaining: limit - open - 1 } };
}

/** The hourly budget after a hit: `resetAt` (epoch ms) is when the subject's hour ends and its whole budget is back. */
export function hourlyView(decision: { allowed: boolean; limit: number; remaining: number; resetAt: number }, now: number): QuotaView {
	const view: QuotaView = { quota: "tasks_per_hour", limit: decision.limit, remaining: decision.allowed ? decision.remaining : 0 };
	if (!decision.allowed) view.retry_after_s = Math.max(1, Math.ceil((decision.resetAt - now) / 1000));
	return view;
}

/** The quota nearest to refusing (the least remaining): what an admitted submission's headers show. */
export function tightest(views: QuotaView[]): QuotaView | undefined {
	return views.reduce<QuotaView | undefined>((least, v) => (!least || v.remaining < least.remaining ? v : least), undefined);
}

export function refusalMessage(view: QuotaView): string {
	return view.quota === "open_tasks"
		? `Open-task limit reached: ${view.limit} pending, retrying or running tasks at once`
		: `Task quota exceeded: ${view.limit} submissions (tasks and pipeline executions) per hour`;
}
