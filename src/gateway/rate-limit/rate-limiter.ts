/**
 * One-minute windows per client, on the minute (src/platform/window-counter.ts). The memory limiter counts on this
 * node; the Redis limiter counts for every gateway sharing the Redis server, and falls back to
 * counting on this node while Redis is unreachable so the API keeps serving.
 */
import { WindowCounter, type WindowDecision } from "../../platform/window-counter";

export type RateDecision = WindowDecision;

export interface RateLimiter {
	hit(key: string): Promise<RateDecision>;
	/** False while a shared limiter has fallen back to per-node counting. */
	readonly shared: boolean;
	close(): Promise<void>;
}

export const WINDOW_SEC = 60;

export class MemoryRateLimiter implements RateLimiter {
	readonly shared = false;
	private readonly counter: WindowCounter;

	constructor(limit: number) {
		this.counter = new WindowCounter(limit, WINDOW_SEC, { aligned: true });
	}

	hit(key: string): Promise<RateDecision> {
		return this.counter.hit(key);
	}

	async close(): Promise<void> {}
}
