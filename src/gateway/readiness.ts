/**
 * `GET /ready`: can this node serve? Every service of this node started (the gateway listens
 * before the others finished starting: the tasks service may still be loading its NeDB file), the
 * store (through the agents service, wherever it runs), the transporter (a real round trip for
 * NATS, RabbitMQ and Redis) and Redis (when the rate limiter uses it).
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

/** `probe`, or a rejection after `timeoutMs` (the probe itself is left to settle on its own: nobody waits for it then). */
async function within<T>(probe: Promise<T>, timeoutMs: number, why: string): Promise<T> {
	probe.catch(() => undefined);
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(why)), timeoutMs)));
	try {
		return await Promise.race([probe, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

interface NatsTx { client?: { flush?: () => Promise<void> } | null }
interface AmqpTx { connection?: { createChannel(): Promise<{ close(): Promise<void> }> } | null; channel?: unknown }
interface RedisClient { status?: string; ping(): Promise<string> }
interface RedisTx { clientPub?: RedisClient | null; clientSub?: RedisClient | null }

/**
 * A round trip to the transporter's server, where its client can make one: Moleculer's
 * `transit.connected` stays true while the server is down and the client keeps reconnecting (NATS),
 * or while a connection that died quietly has not been noticed yet. Others (TCP, …) have only the flags.
 */
const ROUND_TRIPS: Array<{ is: (tx: unknown) => boolean; probe: (tx: never, timeoutMs: number) => Promise<void> }> = [
	{
		// A PING sent while disconnected is answered after the reconnect, or rejected when the client closes.
		is: tx => tx instanceof Transporters.NATS,
		probe: async (tx: NatsTx, timeoutMs) => {
			if (!tx.client?.flush) throw new Error("transporter disconnected");
			try {
				await within(tx.client.flush(), timeoutMs, "transporter unreachable (no PONG)");
			} catch (err) {
				const why = (err as Error).message;
				throw why.startsWith("transporter") ? err : new Error(`transporter unreachable (${why})`);
			}
		}
	},
	{
		// amqplib has no ping: a channel opened and closed on the node's connection is a round trip that touches nothing of Moleculer's.
		is: tx => tx instanceof Transporters.AMQP,
		probe: async (tx: AmqpTx, timeoutMs) => {
			if (!tx.connection || !tx.channel) throw new Error("transporter disconnected (no AMQP channel)");
			let late = false;
			const opening = tx.connection.createChannel();
			// Opened after the probe gave up (the server answered once it could again): closed then, not left open.
			opening.then(channel => void (late && channel.close().catch(() => undefined)), () => undefined);
			try {
				const channel = await within(opening, timeoutMs, "transporter unreachable (RabbitMQ opened no channel)");
				await channel.close().catch(() => undefined);
			} catch (err) {
				late = true;
				throw err;
			}
		}
	},
	{
		// Both clients: the subscriber receives, the publisher sends (and answers the PING).
		is: tx => tx instanceof Transporters.Redis,
		probe: async (tx: RedisTx, timeoutMs) => {
			for (const [role, client] of [["subscriber", tx.clientSub], ["publisher", tx.clientPub]] as const)
				if (!client || client.status !== "ready") throw new Error(`transporter disconnected (Redis ${role} ${client?.status ?? "missing"})`);
			await within(tx.clientPub!.ping(), timeoutMs, "transporter unreachable (no PONG from Redis)");
		}
	}
];

async function probeTransporter(broker: ServiceBroker, timeoutMs: number): Promise<void> {
	const transit = broker.transit as unknown as { connected?: boolean; tx?: { connected?: boolean } } | undefined;
	if (!transit?.connected || transit.tx?.connected === false) throw new Error("transporter disconnected");
	const roundTrip = ROUND_TRIPS.find(r => r.is(transit.tx));
	if (roundTrip) await roundTrip.probe(transit.tx as never, timeoutMs);
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
