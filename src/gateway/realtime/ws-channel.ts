/**
 * Plain WebSocket at `/ws`, for clients without socket.io (the spec's browser example). A browser
 * cannot set headers on a WebSocket, so the token comes as the first message:
 * `{type:"auth", token}` → `{type:"auth_ok"}`, or `{type:"auth_error", message}` and close 4401
 * (messages sent before the answer, while the token is checked, are handled after it, in order).
 * An address that holds WS_MAX_UNAUTHENTICATED_PER_IP connections not authenticated yet (this
 * channel's and socket.io's) gets its next one closed at once, 4429.
 * Then `{type:"subscribe"|"unsubscribe", ...ids}` (acknowledged `subscribed`/`unsubscribed` with the
 * client's subscriptions, or `request_error`) and one JSON message per event.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { TokenVerifier } from "../../platform/verify-token";
import { authenticateListener, RealtimeAuthError, type RealtimeSession } from "./access";
import { closeWithin } from "./graceful-close";
import { peerAddress, TOO_MANY_UNAUTHENTICATED, type Channel, type DisconnectCause, type RealtimeClient, type RealtimeHub } from "./hub";
import { parseSubscriptionRequest, SubscriptionError, Subscriptions } from "./subscriptions";

export const WS_PATH = "/ws";

/** Close codes: 4401 and 4429 mirror HTTP 401 and 429 in the application range; 1013 is the standard "try again later". */
export const WS_CLOSE = {
	unauthorized: 4401,
	tooManyUnauthenticated: 4429,
	tooManyConnections: 1013,
	goingAway: 1001
} as const;

/** Clients only send auth and subscribe messages: refuse anything larger before parsing it. */
const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;
/** Messages a client may send while its token is being verified (they are handled after it). */
const MAX_MESSAGES_WHILE_VERIFYING = 16;
/** Idle TCP connections die silently behind NATs and proxies; pings find them. */
const KEEPALIVE_INTERVAL_MS = 30_000;

export interface WsChannelOptions {
	/** The node's token verifier (the gateway's). */
	verifier: TokenVerifier;
	authTimeoutMs: number;
}

type ClientMessage = { type?: unknown; token?: unknown } & Record<string, unknown>;

function send(ws: WebSocket, message: object): void {
	if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

/** Not `type: "error"`: that is a cluster event (a task failed), which a client must not confuse with its own mistake. */
function requestError(ws: WebSocket, message: string): void {
	send(ws, { type: "request_error", message });
}

function parse(data: RawData, isBinary: boolean): ClientMessage | null {
	if (isBinary) return null;
	try {
		const value: unknown = JSON.parse(data.toString());
		return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as ClientMessage) : null;
	} catch {
		return null;
	}
}

/** A close reason is at most 123 bytes on the wire. */
function closeReason(text: string): string {
	return Buffer.byteLength(text) <= 123 ? text : Buffer.from(text).subarray(0, 120).toString() + "...";
}

export class WsChannel implements Channel {
	readonly name = "ws";
	private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES });
	private readonly alive = new WeakMap<WebSocket, boolean>();
	private readonly sockets = new Map<string, WebSocket>();
	private readonly keepalive: NodeJS.Timeout;

	constructor(private readonly hub: RealtimeHub, private readonly options: WsChannelOptions) {
		this.wss.on("connection", (ws: WebSocket, req: IncomingMessage) => this.onConnection(ws, req));
		this.keepalive = setInterval(() => this.ping(), KEEPALIVE_INTERVAL_MS);
		this.keepalive.unref();
	}

	handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
		this.wss.handleUpgrade(req, socket, head, ws => this.wss.emit("connection", ws, req));
	}

	deliver(clients: RealtimeClient[], _message: unknown, serialized: string): void {
		for (const client of clients) {
			const ws = this.sockets.get(client.id);
			if (ws && ws.readyState === ws.OPEN) ws.send(serialized);
		}
	}

	/** Says goodbye to every connection, authenticated or not, and stops the keepalive. */
	async close(): Promise<void> {
		clearInterval(this.keepalive);
		await closeWithin(this.wss.clients, WS_CLOSE.goingAway, "server shutting down");
		this.wss.close();
	}

	private onConnection(ws: WebSocket, req: IncomingMessage): void {
		this.alive.set(ws, true);
		ws.on("pong", () => this.alive.set(ws, true));
		// Socket errors always end in `close`, where the cleanup is; without a listener they would throw.
		ws.on("error", () => undefined);

		// Unauthenticated from the upgrade until `auth_ok` (or its end): one share of its address's.
		const unauthenticated = this.hub.reserveUnauthenticated(peerAddress(req.socket.remoteAddress));
		if (!unauthenticated) return ws.close(WS_CLOSE.tooManyUnauthenticated, TOO_MANY_UNAUTHENTICATED);
		const slot = this.hub.reserveSlot();
		if (!slot) {
			unauthenticated.release();
			send(ws, { type: "error", error: "too many connections" });
			ws.close(WS_CLOSE.tooManyConnections, "too many connections");
			return;
		}

		let client: RealtimeClient | null = null;
		/** Messages that came while the token was being verified; null before the auth message and after. */
		let waiting: Array<ClientMessage | null> | null = null;
		const refuse = (message: string) => {
			send(ws, { type: "auth_error", message });
			ws.close(WS_CLOSE.unauthorized, closeReason(message));
		};
		const authTimer = setTimeout(() => refuse("authentication timeout"), this.options.authTimeoutMs);
		ws.once("close", () => {
			clearTimeout(authTimer);
			unauthenticated.release();
			if (client) {
				this.hub.remove(client);
				this.sockets.delete(client.id);
			}
			slot.release();
		});

		const handle = (message: ClientMessage | null) => {
			if (!message) return requestError(ws, "expected a JSON object");
			this.onClientMessage(ws, client!, message);
		};
		ws.on("message", (data, isBinary) => {
			const message = parse(data, isBinary);
			if (client) return handle(message);
			if (waiting) {
				if (waiting.length >= MAX_MESSAGES_WHILE_VERIFYING) return refuse("too many messages before authentication");
				return void waiting.push(message);
			}
			clearTimeout(authTimer);
			if (ws.readyState !== ws.OPEN) return;
			if (message?.type !== "auth") return refuse('expected {"type":"auth","token":"..."} as the first message');
			waiting = [];
			authenticateListener(this.options.verifier, message.token).then(
				session => {
					// It may have left while its token was verified: its close has been seen, so it is not added.
					if (ws.readyState !== ws.OPEN) return;
					client = this.admit(ws, session);
					unauthenticated.release();
					const backlog = waiting ?? [];
					waiting = null;
					for (const queued of backlog) handle(queued);
				},
				(err: unknown) => refuse(err instanceof RealtimeAuthError ? err.message : "invalid token")
			);
		});
	}

	private admit(ws: WebSocket, session: RealtimeSession): RealtimeClient {
		const client: RealtimeClient = {
			id: `ws-${randomUUID()}`,
			channel: "ws",
			session,
			subscriptions: new Subscriptions(),
			pendingBytes: () => ws.bufferedAmount,
			disconnect: (reason, cause) => this.disconnect(ws, reason, cause)
		};
		this.sockets.set(client.id, ws);
		this.hub.add(client);
		send(ws, { type: "auth_ok" });
		return client;
	}

	private onClientMessage(ws: WebSocket, client: RealtimeClient, message: ClientMessage): void {
		try {
			switch (message.type) {
				case "subscribe":
					client.subscriptions.add(parseSubscriptionRequest(message));
					return send(ws, { type: "subscribed", subscriptions: client.subscriptions.snapshot() });
				case "unsubscribe":
					client.subscriptions.remove(parseSubscriptionRequest(message, true));
					return send(ws, { type: "unsubscribed", subscriptions: client.subscriptions.snapshot() });
				case "auth":
					return requestError(ws, "already authenticated");
				default:
					return requestError(ws, `unknown message type ${JSON.stringify(message.type)} (expected subscribe, unsubscribe)`);
			}
		} catch (err) {
			// A listener that throws would take the process down: every failure becomes a reply.
			requestError(ws, err instanceof SubscriptionError ? err.message : "could not handle the message");
		}
	}

	private disconnect(ws: WebSocket, reason: string, cause: DisconnectCause): void {
		switch (cause) {
			case "slow":
				// Its buffer is full: a close frame would queue behind it. Cut the TCP connection.
				return ws.terminate();
			case "expired":
				send(ws, { type: "auth_error", message: reason });
				return ws.close(WS_CLOSE.unauthorized, closeReason(reason));
			case "shutdown":
				return ws.close(WS_CLOSE.goingAway, closeReason(reason));
		}
	}

	private ping(): void {
		for (const ws of this.wss.clients) {
			if (!this.alive.get(ws)) {
				ws.terminate();
				continue;
			}
			this.alive.set(ws, false);
			ws.ping();
		}
	}
}
