/**
 * `GET /ready`: can this node serve? Every service of this node started (the gateway listens
 * before the others finished starting: the tasks service may still be loading its NeDB file), the
 * store (through the agents service, wherever it runs), the transporter (a real round trip for
 * NATS) and Redis (when the rate limiter uses it).
 */
import { Transporters, type ServiceBroker } from "moleculer";
import type { EnvConfig } from "../platform/config";
import type { RateLimiter } from "./rate-limit/rate-limiter";
import { RedisRateLimiter } from "./rate-limit/redis-rate-limiter";

export interface Readiness {
	ready: boolean;
	/** Each part checked: "ok", or why not. */
	checks: Record<string, string>;
}

/**
 * Is the transporter reachable now? Moleculer's `transit.connected` stays true while
 * the NATS server is down and its client keeps reconnecting, so for NATS a PING/PONG through the
 * client (`flush`) is the answer; other transporters only have the flags.
 */
async function probeTransporter(broker: ServiceBroker, timeoutMs: number): Promise<void> {
	const transit = broker.transit as unknown as { connected?: boolean; tx?: { connected?: boolean; client?: unknown } } | undefined;
	if (!transit?.connected || transit.tx?.connected === false) throw new Error("transporter disconnected");
	const client = transit.tx instanceof Transporters.NATS ? (transit.tx.client as { flush?: () => Promise<void> } | null) : null;
	if (!client?.flush) return;
	const pong = client.flush();
	// A PING sent while disconnected is answered after the reconnect, or rejected when the client closes: nobody waits then.
	pong.catch(() => undefined);
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("transporter unreachable (no PONG)")), timeoutMs)));
	try {
		await Promise.race([pong, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

export async function checkReadiness(broker: ServiceBroker, config: EnvConfig, limiter: RateLimiter): Promise<Readiness> {
	const checks: Record<string, string> = {};
	const check = async (name: string, probe: () => Promise<unknown>) => {
		try {
			await probe();
			checks[name] = "ok";
		} catch (err) {
			checks[name] = (err as Error).message || "failed";
		}
	};
	await Promise.all([
		check("services", async () => {
			if (!broker.started) throw new Error("starting");
		}),
		check("store", () => broker.call("agents.ping", {}, { timeout: 2000, retries: 0 })),
		config.transporter ? check("transporter", () => probeTransporter(broker, 1500)) : Promise.resolve(),
		limiter instanceof RedisRateLimiter ? check("redis", () => limiter.ping()) : Promise.resolve()
	]);
	return { ready: Object.values(checks).every(v => v === "ok"), checks };
}
