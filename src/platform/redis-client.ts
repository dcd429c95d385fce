/**
 * The Redis client of counters and locks shared between nodes (rate limits, quotas). It fails fast
 * while Redis is unreachable: no offline queue and no retry per command, so a caller falls back to
 * its per-node answer at once instead of waiting behind a reconnect. It keeps reconnecting, and
 * says once when Redis goes away and once when it is back.
 */
import Redis from "ioredis";

export function failFastRedis(url: string, onChange?: (reachable: boolean, err?: Error) => void): Redis {
	const redis = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
	let reachable: boolean | undefined;
	const report = (now: boolean, err?: Error) => {
		if (now !== reachable) onChange?.(now, err);
		reachable = now;
	};
	redis.on("ready", () => report(true));
	redis.on("error", (err: Error) => report(false, err));
	return redis;
}
