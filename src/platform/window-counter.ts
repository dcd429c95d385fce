/**
 * Fixed-window counters per key, on rate-limiter-flexible: a key's window opens with its first hit
 * and lasts `durationSec`, or (`aligned`) windows follow the clock (every minute on the minute, for
 * one-minute windows), as the gateway's rate limit always had them. Counted in this process, or for
 * every node sharing a Redis server — and then, while Redis is unreachable, in this process again
 * (its insurance limiter), so callers keep being answered.
 */
import type Redis from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";

export interface WindowDecision {
	allowed: boolean;
	limit: number;
	remaining: number;
	/** Epoch ms when the key's current window ends. */
	resetAt: number;
}

export interface WindowCounterOptions {
	/** Count for every node on this Redis server, under keys that start with `prefix`. */
	shared?: { redis: Redis; prefix: string };
	/** Windows on the clock's boundaries instead of from a key's first hit. */
	aligned?: boolean;
}

export class WindowCounter {
	private readonly limiter: RateLimiterAbstract;
	private readonly windowMs: number;
	private readonly aligned: boolean;

	constructor(private readonly limit: number, durationSec: number, { shared, aligned = false }: WindowCounterOptions = {}) {
		this.windowMs = durationSec * 1000;
		this.aligned = aligned;
		const memory = new RateLimiterMemory({ points: limit, duration: durationSec });
		this.limiter = shared
			? new RateLimiterRedis({ storeClient: shared.redis, keyPrefix: shared.prefix, points: limit, duration: durationSec, rejectIfRedisNotReady: true, insuranceLimiter: memory })
			: memory;
	}

	/** An aligned window is a key of its own: the window's index goes in front of the key. */
	private window(key: string, now: number): { key: string; resetAt?: number } {
		if (!this.aligned) return { key };
		const index = Math.floor(now / this.windowMs);
		return { key: `${index}:${key}`, resetAt: (index + 1) * this.windowMs };
	}

	/** Counts one hit of `key`: allowed while the window's hits are within the limit. */
	async hit(key: string): Promise<WindowDecision> {
		const now = Date.now();
		const window = this.window(key, now);
		let res: RateLimiterRes;
		let allowed = true;
		try {
			res = await this.limiter.consume(window.key);
		} catch (err) {
			// Over the limit, rate-limiter-flexible rejects with the window's state.
			if (!(err instanceof RateLimiterRes)) throw err;
			res = err;
			allowed = false;
		}
		return { allowed, limit: this.limit, remaining: res.remainingPoints, resetAt: window.resetAt ?? now + Math.max(0, res.msBeforeNext) };
	}

	/** Takes one hit of `key` back (a hit that turned out not to count) from its current window. */
	async refund(key: string): Promise<void> {
		await this.limiter.reward(this.window(key, Date.now()).key, 1);
	}
}
