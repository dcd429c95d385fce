/**
 * How long a failed task waits before its next attempt: exponential backoff with equal jitter.
 */
export interface BackoffOptions {
	baseMs: number;
	maxMs: number;
}

/** The un-jittered delay after attempt `attempt` failed: baseMs doubling per attempt, capped at maxMs. */
export function backoffCeilingMs(attempt: number, opts: BackoffOptions): number {
	const base = Math.max(0, opts.baseMs);
	const max = Math.max(0, opts.maxMs);
	if (base === 0 || max === 0) return 0;
	const doublings = attempt > 1 ? Math.floor(attempt) - 1 : 0;
	return Math.min(max, base * 2 ** doublings);
}

/**
 * Delay in ms before attempt `attempt + 1`, where `attempt` (1-based) is the one that just failed.
 * Half of the ceiling is fixed so the delay never collapses to 0; the other half is random.
 */
export function retryDelayMs(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
	// Jitter spreads out tasks that failed together (one agent crash) so their retries do not land at once (thundering herd).
	const half = backoffCeilingMs(attempt, opts) / 2;
	const drawn = random();
	const spread = drawn > 0 ? Math.min(1, drawn) : 0;
	return Math.round(half + spread * half);
}
