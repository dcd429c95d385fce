/**
 * Moleculer's Redis transporter with two repairs, for nodes that must outlive a Redis outage:
 * - Moleculer's `send` publishes without a catch, so a publish cut off by a dropped connection
 *   ("Connection is closed.") is an unhandled rejection, and Node ends the process on one. Here it
 *   is logged: the message is lost, as pub/sub loses everything sent while disconnected.
 * - Moleculer's `connect` creates the publishing client inside the subscriber's `ready` handler,
 *   which ioredis fires again after every reconnect: each outage left one more Redis connection
 *   behind. Here both clients are made once; ioredis reconnects them (and resubscribes) itself,
 *   and once both are back the node announces itself again, as after any reconnect.
 */
import { Transporters } from "moleculer";
import type { Redis, RedisOptions } from "ioredis";

interface Base {
	opts: RedisOptions;
	prefix: string;
	connected: boolean;
	logger: { info(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void; debug(...a: unknown[]): void };
	broker: { broadcastLocal(event: string, payload: unknown): void };
	clientPub: Redis | null;
	clientSub: Redis | null;
	getRedisClient(opts: RedisOptions): Redis;
	receive(cmd: string, data: Buffer): unknown;
	onConnected(wasReconnect?: boolean): Promise<void>;
}

export class RedisTransporter extends Transporters.Redis {
	override connect(): Promise<void> {
		const self = this as unknown as Base;
		return new Promise<void>(resolve => {
			const sub = self.getRedisClient(self.opts);
			const pub = self.getRedisClient(self.opts);
			let connectedOnce = false;
			const bothReady = () => {
				if (sub.status !== "ready" || pub.status !== "ready" || self.connected) return;
				self.clientSub = sub;
				self.clientPub = pub;
				self.logger.info(connectedOnce ? "Redis clients are connected again." : "Redis clients are connected.");
				const wasReconnect = connectedOnce;
				connectedOnce = true;
				void self.onConnected(wasReconnect).then(resolve, err => self.logger.error("Redis transporter: after connect", err));
			};
			for (const [role, client, type] of [["sub", sub, "FAILED_CONSUMER_ERROR"], ["pub", pub, "FAILED_PUBLISHER_ERROR"]] as const) {
				client.on("ready", bothReady);
				client.on("error", (err: Error) => {
					self.logger.error(`Redis-${role} error`, err.message);
					self.broker.broadcastLocal("$transporter.error", { error: err, module: "transporter", type });
				});
				client.on("close", () => {
					if (self.connected) self.logger.warn(`Redis-${role} client is disconnected.`);
					self.connected = false;
				});
			}
			sub.on("messageBuffer", (rawTopic: Buffer, buf: Buffer) => {
				const topic = rawTopic.toString().substring(self.prefix.length + 1);
				self.receive(topic.split(".")[0], buf);
			});
		});
	}

	override send(topic: string, data: Buffer): Promise<void> {
		const self = this as unknown as Base;
		if (!self.clientPub) return Promise.reject(new Error("Redis Client is not available"));
		self.clientPub.publish(topic, data).catch((err: Error) => self.logger.warn(`Redis publish to ${topic} lost: ${err.message}`));
		return Promise.resolve();
	}
}
