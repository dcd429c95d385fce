/**
 * The panel's one WebSocket (`/ws`, relative to the page): authenticates with the session's token,
 * hands every event on, notices gaps in `seq` and asks for a resync, and reconnects by itself with
 * backoff (then resyncs, since events were missed while it was away).
 */
import { signal } from "@preact/signals";
import type { LiveMessage } from "../lib/api-types";
import { reconnectDelay, SeqTracker } from "./reducers";

export type LiveStatus = "connecting" | "live" | "reconnecting";
export const liveStatus = signal<LiveStatus>("connecting");

/** A connection not authenticated by then is given up and tried again (a proxy or server may hold an upgrade unanswered). */
const CONNECT_TIMEOUT_MS = 5000;
const EVENT_TYPES = new Set(["task_update", "agent_update", "pipeline_progress", "error"]);

export interface LiveHandlers {
	onMessage(message: LiveMessage): void;
	/** What is shown may be stale: after a reconnect, or a gap in `seq`. */
	onResync(reason: "reconnected" | "gap"): void;
}

export function liveUrl(page: Location): string {
	const url = new URL("ws", page.href);
	url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
	url.hash = "";
	url.search = "";
	return url.href;
}

export class LiveConnection {
	private socket: WebSocket | null = null;
	private timer: ReturnType<typeof setTimeout> | null = null;
	private connectTimer: ReturnType<typeof setTimeout> | null = null;
	private attempt = 0;
	private everLive = false;
	private stopped = false;
	private readonly seq = new SeqTracker();

	constructor(private readonly url: string, private readonly token: string, private readonly handlers: LiveHandlers) {}

	start(): void {
		this.stopped = false;
		this.open();
	}

	stop(): void {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		if (this.connectTimer) clearTimeout(this.connectTimer);
		this.socket?.close(1000, "signed out");
		this.socket = null;
	}

	private open(): void {
		liveStatus.value = this.everLive ? "reconnecting" : "connecting";
		const socket = (this.socket = new WebSocket(this.url));
		this.connectTimer = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
		socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token: this.token }));
		socket.onmessage = event => this.receive(event.data);
		socket.onclose = () => {
			if (this.socket !== socket) return;
			this.socket = null;
			if (this.connectTimer) clearTimeout(this.connectTimer);
			if (!this.stopped) this.retry();
		};
	}

	private receive(data: unknown): void {
		let message: { type?: string } & Record<string, unknown>;
		try {
			message = JSON.parse(String(data));
		} catch {
			return;
		}
		if (message.type === "auth_ok") {
			if (this.connectTimer) clearTimeout(this.connectTimer);
			const reconnected = this.everLive;
			this.everLive = true;
			this.attempt = 0;
			this.seq.reset();
			liveStatus.value = "live";
			if (reconnected) this.handlers.onResync("reconnected");
			return;
		}
		if (!EVENT_TYPES.has(message.type ?? "")) return;
		const live = message as unknown as LiveMessage;
		const gap = this.seq.observe(live.seq);
		this.handlers.onMessage(live);
		if (gap) this.handlers.onResync("gap");
	}

	private retry(): void {
		liveStatus.value = "reconnecting";
		this.timer = setTimeout(() => this.open(), reconnectDelay(this.attempt++));
	}
}
