/**
 * The connected listeners of one gateway, whatever their channel: connection slots (one budget
 * for socket.io and `/ws` together, and a share per address for connections not authenticated
 * yet), who gets which event, and dropping clients that cannot keep up. Knows nothing of sockets;
 * each channel adapts its connections to `RealtimeClient`.
 */
import type { ClusterMessage, NumberedMessage } from "../../types";
import { isVisibleTo, type RealtimeSession } from "./access";
import type { Subscriptions } from "./subscriptions";

export type ChannelName = "socket.io" | "ws";
/** Why the hub ends a connection: channels close differently for each (see their `disconnect`). */
export type DisconnectCause = "slow" | "expired" | "shutdown";

export interface RealtimeClient {
	readonly id: string;
	readonly channel: ChannelName;
	readonly session: RealtimeSession;
	readonly subscriptions: Subscriptions;
	/** Bytes handed to this connection that the network has not taken yet. */
	pendingBytes(): number;
	/**
	 * Ends the connection; `reason` is for the client where the channel can still say it. A `slow`
	 * client's buffer is full, so nothing more can be sent to it, not even a goodbye.
	 */
	disconnect(reason: string, cause: DisconnectCause): void;
}

export interface Channel {
	readonly name: ChannelName;
	/** Sends one event to the given clients (all of this channel), encoding it as few times as it can. */
	deliver(clients: RealtimeClient[], message: ClusterMessage, serialized: string): void;
}

export interface HubOptions {
	maxConnections: number;
	/**
	 * Connections from one address that have not authenticated yet, both channels together: a
	 * client that never sends a token cannot hold more (an authenticated one no longer counts).
	 */
	maxUnauthenticatedPerAddress: number;
	bufferLimitBytes: number;
	/** Told of every client the hub disconnects on its own (slow, token expired). */
	onDrop(client: RealtimeClient, reason: string, cause: DisconnectCause): void;
	/** Told the number of open connections (both channels) whenever it changes. */
	onConnectionCount?(open: number): void;
}

/** A held connection slot; `release` may be called more than once (every close path calls it). */
export interface ConnectionSlot {
	release(): void;
}

// setTimeout cannot wait longer; a token valid for longer is simply not timed.
const MAX_TIMER_MS = 2 ** 31 - 1;

function slot(release: () => void): ConnectionSlot {
	let held = true;
	return {
		release: () => {
			if (!held) return;
			held = false;
			release();
		}
	};
}

/** Why a connection over its address's share of unauthenticated connections is refused. */
export const TOO_MANY_UNAUTHENTICATED = "too many unauthenticated connections from this address";

/** The key of a peer's address: an IPv4 peer on a dual-stack socket (`::ffff:1.2.3.4`) is `1.2.3.4`. */
export function peerAddress(remoteAddress: string | undefined): string {
	if (!remoteAddress) return "unknown";
	return remoteAddress.startsWith("::ffff:") && remoteAddress.includes(".") ? remoteAddress.slice("::ffff:".length) : remoteAddress;
}

export class RealtimeHub {
	private openConnections = 0;
	private sequence = 0;
	/** Address → connections from it that have not authenticated yet. */
	private readonly unauthenticated = new Map<string, number>();
	private readonly clients = new Map<string, RealtimeClient>();
	private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
	private readonly channels = new Map<ChannelName, Channel>();

	constructor(private readonly options: HubOptions) {}

	get connectionCount(): number {
		return this.openConnections;
	}

	get clientCount(): number {
		return this.clients.size;
	}

	addChannel(channel: Channel): void {
		this.channels.set(channel.name, channel);
	}

	/** A slot for a new connection (authenticated or not yet), or null when the limit is reached. */
	reserveSlot(): ConnectionSlot | null {
		if (this.openConnections >= this.options.maxConnections) return null;
		this.openConnections++;
		this.options.onConnectionCount?.(this.openConnections);
		return slot(() => {
			this.openConnections--;
			this.options.onConnectionCount?.(this.openConnections);
		});
	}

	/** Connections from `address` (see `peerAddress`) that have not authenticated yet. */
	unauthenticatedFrom(address: string): number {
		return this.unauthenticated.get(address) ?? 0;
	}

	/** May `address` open one more connection that is not authenticated yet? */
	admitsUnauthenticated(address: string): boolean {
		return this.unauthenticatedFrom(address) < this.options.maxUnauthenticatedPerAddress;
	}

	/**
	 * A share of `address`'s unauthenticated connections, or null when it holds all of them already.
	 * Release it when the connection authenticates or ends, whichever comes first.
	 */
	reserveUnauthenticated(address: string): ConnectionSlot | null {
		if (!this.admitsUnauthenticated(address)) return null;
		this.unauthenticated.set(address, this.unauthenticatedFrom(address) + 1);
		return slot(() => {
			const left = this.unauthenticatedFrom(address) - 1;
			if (left > 0) this.unauthenticated.set(address, left);
			else this.unauthenticated.delete(address);
		});
	}

	add(client: RealtimeClient): void {
		this.clients.set(client.id, client);
		const expiresAt = client.session.expiresAt;
		if (expiresAt === undefined) return;
		const delay = expiresAt - Date.now();
		if (delay > MAX_TIMER_MS) return;
		const timer = setTimeout(() => this.drop(client, "token expired", "expired"), Math.max(0, delay));
		timer.unref();
		this.expiryTimers.set(client.id, timer);
	}

	remove(client: RealtimeClient): void {
		this.clients.delete(client.id);
		const timer = this.expiryTimers.get(client.id);
		if (timer) clearTimeout(timer);
		this.expiryTimers.delete(client.id);
	}

	/** Relays one event to every client allowed and subscribed to it; returns how many got it. */
	publish(event: ClusterMessage): number {
		// Every event this node relays gets the next number, whether or not a client wants it: a client
		// that follows everything sees a gap exactly when it lost something (a restart starts again at 1).
		const message: NumberedMessage = { ...event, seq: ++this.sequence };
		const serialized = JSON.stringify(message);
		const size = Buffer.byteLength(serialized);
		const byChannel = new Map<ChannelName, RealtimeClient[]>();
		for (const client of this.clients.values()) {
			if (!isVisibleTo(client.session.principal, message) || !client.subscriptions.matches(message)) continue;
			if (this.overBuffer(client, size)) continue;
			const list = byChannel.get(client.channel);
			if (list) list.push(client);
			else byChannel.set(client.channel, [client]);
		}
		let delivered = 0;
		for (const [name, clients] of byChannel) {
			this.channels.get(name)?.deliver(clients, message, serialized);
			delivered += clients.length;
		}
		return delivered;
	}

	/** Disconnects every client (shutdown). */
	disconnectAll(reason: string): void {
		for (const client of [...this.clients.values()]) {
			this.remove(client);
			client.disconnect(reason, "shutdown");
		}
	}

	/**
	 * A client with nothing pending always gets the event, however large; one with a backlog is
	 * dropped once the event would take it past the bound, so its buffer never grows without limit
	 * and the loop never waits for it.
	 */
	private overBuffer(client: RealtimeClient, size: number): boolean {
		const pending = client.pendingBytes();
		if (pending === 0 || pending + size <= this.options.bufferLimitBytes) return false;
		this.drop(client, `slow consumer: ${pending} bytes pending, limit ${this.options.bufferLimitBytes}`, "slow");
		return true;
	}

	private drop(client: RealtimeClient, reason: string, cause: DisconnectCause): void {
		if (!this.clients.has(client.id)) return;
		this.remove(client);
		this.options.onDrop(client, reason, cause);
		client.disconnect(reason, cause);
	}
}
