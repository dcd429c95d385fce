/**
 * Fixed one-minute windows per client. The memory limiter counts on this node; the Redis limiter
 * counts for every gateway sharing the Redis server, and falls back to the memory limiter while
 * Redis is unreachable so the API keeps serving.
 */
export interface RateDecision {
	allowed: boolean;
	limit: number;
	remaining: number;
	/** Epoch ms when the current window ends. */
	resetAt: number;
}

export interface RateLimiter {
	hit(key: string, now?: number): Promise<RateDecision>;
	/** False while a shared limiter has fallen back to per-node counting. */
	readonly shared: boolean;
	close(): Promise<void>;
}

export const WINDOW_MS = 60_000;

export function windowOf(now: number): { index: number; resetAt: number } {
	const index = Math.floor(now / WINDOW_MS);
	return { index, resetAt: (index + 1) * WINDOW_MS };
}

export function decide(count: number, limit: number, resetAt: number): RateDecision {
	return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetAt };
}

export class MemoryRateLimiter implements RateLimiter {
	readonly shared = false;
	private window = -1;
	private counts = new Map<string, number>();

	constructor(private readonly limit: number) {}

	async hit(key: string, now = Date.now()): Promise<RateDecision> {
		const { index, resetAt } = windowOf(now);
		if (index !== this.window) {
			// A new window: old counts are dead, drop them all at once (no per-key timers).
			this.window = index;
			this.counts = new Map();
		}
		const count = (this.counts.get(key) ?? 0) + 1;
		this.counts.set(key, count);
		return decide(count, this.limit, resetAt);
	}

	async close(): Promise<void> {}
}
