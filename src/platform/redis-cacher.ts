/**
 * Moleculer's Redis cacher, made optional at run time: while Redis is unreachable every read is a
 * miss and every write is skipped, so cached actions keep answering from the source instead of
 * failing. Commands fail fast (no offline queue) rather than hang until Redis returns.
 */
import { Cachers } from "moleculer";

/** ioredis options from a redis:// URL, tuned to fail fast. */
export function redisOptions(url: string) {
	const u = new URL(url);
	return {
		host: u.hostname,
		port: Number(u.port || 6379),
		username: u.username ? decodeURIComponent(u.username) : undefined,
		password: u.password ? decodeURIComponent(u.password) : undefined,
		db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
		tls: u.protocol === "rediss:" ? {} : undefined,
		maxRetriesPerRequest: 0,
		enableOfflineQueue: false
	};
}

export class ResilientRedisCacher extends Cachers.Redis {
	override async get(key: string) {
		try {
			return await super.get(key);
		} catch {
			return null;
		}
	}

	override async set(key: string, data: unknown, ttl?: number) {
		try {
			return await super.set(key, data, ttl);
		} catch {
			return undefined;
		}
	}

	override async del(keys: string | string[]) {
		try {
			return await super.del(keys);
		} catch {
			return undefined;
		}
	}

	override async clean(match?: string | string[]) {
		try {
			return await super.clean(match);
		} catch {
			return undefined;
		}
	}
}
