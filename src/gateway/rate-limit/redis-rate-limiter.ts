import type Redis from "ioredis";
import { failFastRedis } from "../../platform/redis-client";
import { WindowCounter } from "../../platform/window-counter";
import { WINDOW_SEC, type RateDecision, type RateLimiter } from "./rate-limiter";

export class RedisRateLimiter implements RateLimiter {
	private readonly redis: Redis;
	private readonly counter: WindowCounter;

	/** `onFallback`: Redis became unreachable (said once per outage). */
	constructor(url: string, limit: number, prefix: string, onFallback?: (err: Error) => void) {
		this.redis = failFastRedis(url, (reachable, err) => {
			if (!reachable) onFallback?.(err ?? new Error("Redis unreachable"));
		});
		this.counter = new WindowCounter(limit, WINDOW_SEC, { shared: { redis: this.redis, prefix }, aligned: true });
	}

	get shared(): boolean {
		return this.redis.status === "ready";
	}

	hit(key: string): Promise<RateDecision> {
		return this.counter.hit(key);
	}

	async ping(): Promise<void> {
		await this.redis.ping();
	}

	async close(): Promise<void> {
		this.redis.disconnect();
	}
}
