import Redis from "ioredis";
import { decide, MemoryRateLimiter, WINDOW_MS, windowOf, type RateDecision, type RateLimiter } from "./rate-limiter";

export class RedisRateLimiter implements RateLimiter {
	private readonly redis: Redis;
	private readonly fallback: MemoryRateLimiter;

	constructor(url: string, private readonly limit: number, private readonly prefix: string, private readonly onFallback?: (err: Error) => void) {
		this.fallback = new MemoryRateLimiter(limit);
		// Fail fast while Redis is down: requests must not queue behind a reconnecting client.
		this.redis = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: false });
		this.redis.on("error", () => undefined);
	}

	get shared(): boolean {
		return this.redis.status === "ready";
	}

	async hit(key: string, now = Date.now()): Promise<RateDecision> {
		const { index, resetAt } = windowOf(now);
		const redisKey = `${this.prefix}:${index}:${key}`;
		try {
			const [[, count]] = (await this.redis.multi().incr(redisKey).pexpire(redisKey, WINDOW_MS * 2).exec()) as [[null, number]];
			return decide(count, this.limit, resetAt);
		} catch (err) {
			this.onFallback?.(err as Error);
			return this.fallback.hit(key, now);
		}
	}

	async ping(): Promise<void> {
		await this.redis.ping();
	}

	async close(): Promise<void> {
		this.redis.disconnect();
	}
}
