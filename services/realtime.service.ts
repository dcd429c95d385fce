/**
 * Real-time events: relays `task.updated`, `agent.updated`, `pipeline.progress` and `mcp.error`
 * to socket.io and `/ws` clients of the gateway on this node. A node without the gateway runs
 * no channels (the service idles there, so `SERVICES=*` stays a valid node layout).
 *
 * Cluster delivery: `broker.emit` hands an event to ONE instance per service group, and a
 * service's events are in the group named after the service, so with several gateways only one of
 * them would relay each event. Every gateway has its own clients, so each needs every event:
 * `merged` puts this service's handlers in a group of their own per node (`realtime@<nodeID>`).
 * Emitters keep using `emit`: balanced consumers elsewhere (one instance acting per event) stay
 * correct, and each gateway still gets exactly one copy. `broadcast` reaches every node once too.
 */
import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Context, Service, ServiceSchema } from "moleculer";
import { appConfig } from "../src/platform/app-config";
import { localGatewayServer } from "../src/gateway/local-gateway";
import type { AppConfig } from "../src/platform/config";
import type { RealtimeHub } from "../src/gateway/realtime/hub";
import { RELAYED_EVENTS, toWireMessage, type RelayedEvent } from "../src/gateway/realtime/messages";
import type { SocketIoChannel } from "../src/gateway/realtime/socketio-channel";
import type { WsChannel } from "../src/gateway/realtime/ws-channel";
import { MCP_METRIC } from "../src/platform/metrics/definitions";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { tokenVerifierOf } from "../src/platform/verify-token";

interface RealtimeThis extends Service {
	config: AppConfig;
	hub: RealtimeHub | null;
	socketIo: SocketIoChannel | null;
	ws: WsChannel | null;
	httpServer: HttpServer | null;
	routeUpgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null;
	relay(event: RelayedEvent, payload: unknown): void;
}

/** The event group that gives each node's realtime service its own copy of every event. */
export function realtimeEventGroup(nodeID: string): string {
	return `realtime@${nodeID}`;
}

const relayHandlers = Object.fromEntries(
	RELAYED_EVENTS.map(event => [
		event,
		{
			handler(this: RealtimeThis, ctx: Context<unknown>) {
				this.relay(event, ctx.params);
			}
		}
	])
);

const RealtimeService: TypedServiceSchema<RealtimeThis> & { merged(this: RealtimeThis, schema: ServiceSchema): void } = {
	name: "realtime",

	/** Runs before the handlers are registered, once the node id is known (see the header). */
	merged(this: RealtimeThis, schema: ServiceSchema) {
		const group = realtimeEventGroup(this.broker.nodeID);
		// A fresh object: several brokers in one process (tests, benchmarks) share this schema.
		schema.events = Object.fromEntries(
			Object.entries(schema.events ?? {}).map(([name, def]) => [name, typeof def === "function" ? { handler: def, group } : { ...def, group }])
		);
	},

	events: relayHandlers,

	methods: {
		relay(this: RealtimeThis, event: RelayedEvent, payload: unknown) {
			if (!this.hub) return;
			const message = toWireMessage(event, payload);
			if (!message) {
				this.logger.warn({ event }, "malformed event payload: not relayed");
				return;
			}
			this.hub.publish(message);
		}
	},

	created(this: RealtimeThis) {
		this.config = appConfig(this.broker);
		this.hub = null;
		this.socketIo = null;
		this.ws = null;
		this.httpServer = null;
		this.routeUpgrade = null;
	},

	async started(this: RealtimeThis) {
		// Services are all created before any starts, so the gateway's server exists by now if it ever will.
		const server = localGatewayServer(this.broker);
		if (!server) {
			this.logger.info("No API gateway on this node: real-time channels not started here");
			return;
		}
		// Loaded only here: a node without the gateway never loads socket.io or ws.
		const [{ RealtimeHub }, { SOCKET_IO_PATH, SocketIoChannel }, { WS_PATH, WsChannel }] = await Promise.all([
			import("../src/gateway/realtime/hub"),
			import("../src/gateway/realtime/socketio-channel"),
			import("../src/gateway/realtime/ws-channel")
		]);
		const config = this.config;
		const hub = new RealtimeHub({
			maxConnections: config.maxWsConnections,
			maxUnauthenticatedPerAddress: config.wsMaxUnauthenticatedPerIp,
			bufferLimitBytes: config.wsClientBufferLimit,
			// The gauge is registered on every node with metrics on (see src/platform/metrics/definitions.ts).
			onConnectionCount: open => {
				if (config.metricsEnabled) this.broker.metrics.set(MCP_METRIC.wsConnections, open);
			},
			onDrop: (client, reason, cause) => {
				const fields = { client_id: client.id, channel: client.channel, sub: client.session.principal.sub, reason };
				if (cause === "slow") this.logger.warn(fields, "real-time client disconnected");
				else this.logger.info(fields, "real-time client disconnected");
			}
		});
		const verifier = tokenVerifierOf(this.broker);
		const socketIo = new SocketIoChannel(server, hub, { verifier, corsOrigins: config.corsOrigins });
		const ws = new WsChannel(hub, { verifier, authTimeoutMs: config.wsAuthTimeoutMs });
		hub.addChannel(socketIo);
		hub.addChannel(ws);

		this.routeUpgrade = (req, socket, head) => {
			const path = (req.url ?? "").split("?")[0];
			if (path === WS_PATH) return ws.handleUpgrade(req, socket, head);
			// engine.io has its own `upgrade` listener for its path.
			if (path.startsWith(`${SOCKET_IO_PATH}/`)) return;
			// Nothing else upgrades: without an answer the client would hang until its own timeout.
			socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
		};
		server.on("upgrade", this.routeUpgrade);
		this.hub = hub;
		this.socketIo = socketIo;
		this.ws = ws;
		this.httpServer = server;
		this.logger.info(`Real-time events on socket.io (${SOCKET_IO_PATH}) and ${WS_PATH}`);
	},

	async stopped(this: RealtimeThis) {
		if (this.httpServer && this.routeUpgrade) this.httpServer.off("upgrade", this.routeUpgrade);
		const hub = this.hub;
		this.hub = null;
		// The channels first: they close every connection, authenticated or not, within a grace period.
		await Promise.all([this.ws?.close(), this.socketIo?.close()]);
		// Then whatever the hub still holds (expiry timers of clients whose close has not been seen yet).
		hub?.disconnectAll("server shutting down");
		this.ws = this.socketIo = null;
		this.httpServer = this.routeUpgrade = null;
	}
};

export default RealtimeService;
