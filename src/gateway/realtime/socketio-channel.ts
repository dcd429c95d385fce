/**
 * socket.io on the gateway's HTTP server (default path `/socket.io`). The handshake's
 * `auth.token` (or an `Authorization: Bearer` header, for non-browser clients) is checked in
 * middleware, so a refused client never joins; the reason reaches it as `connect_error`.
 */
import type { Server as HttpServer } from "node:http";
import { Server, type Socket } from "socket.io";
import type { WebSocket } from "ws";
import { bearerToken } from "../../platform/tokens";
import type { TokenVerifier } from "../../platform/verify-token";
import { socketIoCors } from "../http-hygiene";
import type { AgentUpdateMessage, ClusterMessage, ErrorMessage, PipelineProgressMessage, TaskUpdateMessage } from "../../types";
import { authenticateListener, RealtimeAuthError, type RealtimeSession } from "./access";
import { closeWithin } from "./graceful-close";
import { peerAddress, TOO_MANY_UNAUTHENTICATED, type Channel, type ConnectionSlot, type RealtimeClient, type RealtimeHub } from "./hub";
import { parseSubscriptionRequest, SubscriptionError, Subscriptions, type SubscriptionSnapshot } from "./subscriptions";

export const SOCKET_IO_PATH = "/socket.io";
/** Clients only send small subscribe messages: refuse anything larger before parsing it. */
const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

export type SubscriptionReply = { ok: true; subscriptions: SubscriptionSnapshot } | { ok: false; error: string };

interface ServerToClientEvents {
	task_update(message: TaskUpdateMessage): void;
	agent_update(message: AgentUpdateMessage): void;
	pipeline_progress(message: PipelineProgressMessage): void;
	error(message: ErrorMessage): void;
}

interface ClientToServerEvents {
	subscribe(body: unknown, ack?: (reply: SubscriptionReply) => void): void;
	unsubscribe(body: unknown, ack?: (reply: SubscriptionReply) => void): void;
}

interface SocketData {
	session: RealtimeSession;
}

type IoServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** What the channel uses of an engine.io connection. */
interface EngineSocket {
	readonly remoteAddress: string;
	close(): void;
	once(event: "close", listener: () => void): void;
}

/** engine.io keeps the transport private; its `ws` socket is the only view of what the kernel has not taken. */
interface EngineInternals {
	transport?: { name?: string; socket?: WebSocket };
	close(discard: boolean): void;
}

const WS_GOING_AWAY = 1001;

function engineOf(socket: IoSocket): EngineInternals {
	return socket.conn as unknown as EngineInternals;
}

/** The `ws` socket under engine.io's websocket transport (none while long-polling). */
function rawWebSocket(socket: IoSocket): WebSocket | undefined {
	const transport = engineOf(socket).transport;
	return transport?.name === "websocket" ? transport.socket : undefined;
}

function sizeOf(data: unknown): number {
	if (typeof data === "string") return data.length;
	if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
	return 0;
}

/**
 * A connection's backlog in bytes: engine.io's write buffer (packets queued while the transport
 * is busy), kept up to date from its public `packetCreate`/`flush` events so that checking it per
 * event is O(1), plus, on the websocket transport, what `ws` has not handed to the kernel yet.
 * Counting bytes rather than packets keeps one meaning for `WS_CLIENT_BUFFER_BYTES` on both channels.
 */
export function trackBacklog(socket: IoSocket): () => number {
	let queued = 0;
	socket.conn.on("packetCreate", (packet: { data?: unknown }) => (queued += sizeOf(packet.data)));
	// A flush hands the whole write buffer to the transport.
	socket.conn.on("flush", () => (queued = 0));
	return () => queued + (rawWebSocket(socket)?.bufferedAmount ?? 0);
}

export interface SocketIoChannelOptions {
	/** The node's token verifier (the gateway's). */
	verifier: TokenVerifier;
	corsOrigins: string[] | "*";
}

export class SocketIoChannel implements Channel {
	readonly name = "socket.io";
	private readonly io: IoServer;
	/** Engine connections whose socket.io client has not authenticated yet, and their share. */
	private readonly unauthenticated = new WeakMap<object, ConnectionSlot>();
	/** engine.io's own `upgrade` listener on the gateway's server: removed on close (see `close`). */
	private readonly engineUpgrade: Array<(...args: unknown[]) => void>;

	constructor(private readonly server: HttpServer, private readonly hub: RealtimeHub, options: SocketIoChannelOptions) {
		const cors = socketIoCors(options.corsOrigins);
		const before = new Set(server.listeners("upgrade"));
		this.io = new Server(server, {
			path: SOCKET_IO_PATH,
			serveClient: false,
			maxHttpBufferSize: MAX_CLIENT_MESSAGE_BYTES,
			...(cors ? { cors } : {}),
			// The service routes every other upgrade itself (`/ws`, 404): engine.io must not touch them.
			destroyUpgrade: false,
			// A handshake from an address that holds its share of unauthenticated connections is refused
			// (403 to long-polling, 400 to a websocket upgrade, the reason as body: the client's
			// connect_error); the share is counted per engine connection below.
			allowRequest: (req, answer) => {
				const allowed = hub.admitsUnauthenticated(peerAddress(req.socket.remoteAddress));
				answer(allowed ? null : TOO_MANY_UNAUTHENTICATED, allowed);
			}
		});
		this.engineUpgrade = server.listeners("upgrade").filter(l => !before.has(l)) as Array<(...args: unknown[]) => void>;
		// An engine connection is unauthenticated until the middleware below accepts its token.
		this.io.engine.on("connection", (conn: EngineSocket) => {
			const share = hub.reserveUnauthenticated(peerAddress(conn.remoteAddress));
			// Another connection from the address took the last share since its handshake was allowed.
			if (!share) return conn.close();
			this.unauthenticated.set(conn, share);
			conn.once("close", () => share.release());
		});
		this.io.use((socket, next) => {
			const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token ?? bearerToken(socket.handshake.headers.authorization);
			const admit = (session: RealtimeSession) => {
				// It may have left while its token was verified: its close has been seen, so nothing is reserved for it.
				if (socket.conn.readyState !== "open") return next(new Error("connection closed"));
				socket.data.session = session;
				const slot = this.hub.reserveSlot();
				if (!slot) return next(new Error("too many connections"));
				// The engine connection's end covers a client that leaves before `connection` fires too.
				socket.conn.once("close", () => slot.release());
				this.unauthenticated.get(socket.conn)?.release();
				next();
			};
			authenticateListener(options.verifier, token).then(admit, (err: unknown) =>
				next(new Error(`unauthorized: ${err instanceof RealtimeAuthError ? err.message : "invalid token"}`))
			);
		});
		this.io.on("connection", socket => this.onConnection(socket));
	}

	deliver(clients: RealtimeClient[], message: ClusterMessage): void {
		// One broadcast to the clients' own rooms: socket.io encodes the packet (and its websocket frame) once.
		const operator = this.io.to(clients.map(c => c.id));
		(operator.emit as (event: string, message: ClusterMessage) => boolean)(message.type, message);
	}

	/**
	 * Drops every client and stops engine.io. Not `io.close()`: that also closes the HTTP server,
	 * which belongs to the gateway. engine.io's `upgrade` listener goes too: with `destroyUpgrade`
	 * off it would hold every later upgrade unanswered (the gateway could then never close).
	 */
	async close(): Promise<void> {
		const raw = [...this.io.of("/").sockets.values()].map(rawWebSocket).filter((ws): ws is WebSocket => ws !== undefined);
		for (const listener of this.engineUpgrade) this.server.off("upgrade", listener);
		this.io.disconnectSockets(true);
		this.io.engine.close();
		await closeWithin(raw, WS_GOING_AWAY, "server shutting down");
	}

	private onConnection(socket: IoSocket): void {
		const subscriptions = new Subscriptions();
		const client: RealtimeClient = {
			id: socket.id,
			channel: "socket.io",
			session: socket.data.session,
			subscriptions,
			pendingBytes: trackBacklog(socket),
			disconnect: (_reason, cause) => (cause === "slow" ? cutTransport(socket) : socket.disconnect(true))
		};
		this.hub.add(client);
		socket.on("disconnect", () => this.hub.remove(client));

		const handle = (change: (body: unknown) => void) => (body: unknown, ack?: (reply: SubscriptionReply) => void) => {
			let reply: SubscriptionReply;
			try {
				change(body);
				reply = { ok: true, subscriptions: subscriptions.snapshot() };
			} catch (err) {
				// A listener that throws would take the process down: every failure becomes a reply.
				reply = { ok: false, error: err instanceof SubscriptionError ? err.message : "could not handle the message" };
			}
			if (typeof ack === "function") ack(reply);
		};
		socket.on("subscribe", handle(body => subscriptions.add(parseSubscriptionRequest(body))));
		socket.on("unsubscribe", handle(body => subscriptions.remove(parseSubscriptionRequest(body, true))));
	}
}

/**
 * A slow client's buffer is full, so a polite disconnect (a packet, then waiting for the buffer to
 * drain) could wait forever: discard the backlog and cut the transport instead.
 */
function cutTransport(socket: IoSocket): void {
	const raw = rawWebSocket(socket);
	engineOf(socket).close(true);
	raw?.terminate();
}
