/**
 * The listeners of the fan-out benchmark, in their own process so that decoding a million
 * messages does not share an event loop with the server being measured. Forked by
 * `realtime-fanout.ts` with BENCH_URL, BENCH_TOKEN, BENCH_CLIENTS, BENCH_EVENTS; talks over IPC:
 *   → { type: "ready" } once every client is connected
 *   ← { type: "sent", sentAt: number[] } (epoch ms of event i, high resolution)
 *   → { type: "result", ...FanoutClientResult } when all deliveries arrived (or the deadline passed)
 */
import { io, type Socket } from "socket.io-client";

export interface FanoutClientResult {
	expected: number;
	received: number;
	p50: number;
	p99: number;
	max: number;
	firstReceivedAt: number;
	lastReceivedAt: number;
}

export type ParentMessage = { type: "sent"; sentAt: number[] };
export type ChildMessage = { type: "ready" } | ({ type: "result" } & FanoutClientResult) | { type: "failed"; error: string };

const CONNECT_BATCH = 100;
const DEADLINE_MS = 60_000;

const now = () => performance.timeOrigin + performance.now();

function percentileOf(sorted: Float64Array, p: number): number {
	return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

function connect(url: string, token: string, onEvent: (message: { task_id: string }) => void): Promise<Socket> {
	// forceNew: by default clients of one URL share a single connection, which would measure nothing.
	const socket = io(url, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
	socket.on("task_update", onEvent);
	return new Promise((resolve, reject) => {
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", reject);
	});
}

async function main(): Promise<void> {
	const url = process.env.BENCH_URL!;
	const token = process.env.BENCH_TOKEN ?? "";
	const clients = Number(process.env.BENCH_CLIENTS);
	const events = Number(process.env.BENCH_EVENTS);
	const expected = clients * events;
	// Receive time of event i at client c; 0 = not (yet) received.
	const receivedAt = new Float64Array(expected);
	let received = 0;
	let firstReceivedAt = Infinity;
	let lastReceivedAt = 0;

	const sockets: Socket[] = [];
	for (let start = 0; start < clients; start += CONNECT_BATCH) {
		const batch = Array.from({ length: Math.min(CONNECT_BATCH, clients - start) }, (_, k) => {
			const client = start + k;
			return connect(url, token, message => {
				const at = now();
				const index = Number(message.task_id.slice(message.task_id.lastIndexOf("-") + 1));
				receivedAt[index * clients + client] = at;
				received++;
				if (at < firstReceivedAt) firstReceivedAt = at;
				lastReceivedAt = at;
			});
		});
		sockets.push(...(await Promise.all(batch)));
	}

	const sentAt = await new Promise<number[]>(resolve => {
		process.on("message", (message: ParentMessage) => {
			if (message.type === "sent") resolve(message.sentAt);
		});
		process.send!({ type: "ready" } satisfies ChildMessage);
	});

	const deadline = Date.now() + DEADLINE_MS;
	while (received < expected && Date.now() < deadline) await new Promise(r => setTimeout(r, 20));
	for (const socket of sockets) socket.close();

	const latencies = new Float64Array(received);
	let n = 0;
	for (let i = 0; i < expected; i++) {
		const at = receivedAt[i];
		if (at > 0) latencies[n++] = at - sentAt[Math.floor(i / clients)];
	}
	latencies.sort();
	const result: FanoutClientResult = {
		expected,
		received,
		p50: percentileOf(latencies, 50),
		p99: percentileOf(latencies, 99),
		max: latencies.length ? latencies[latencies.length - 1] : NaN,
		firstReceivedAt,
		lastReceivedAt
	};
	process.send!({ type: "result", ...result } satisfies ChildMessage);
}

main().catch(err => {
	process.send?.({ type: "failed", error: (err as Error).message } satisfies ChildMessage);
	process.exitCode = 1;
});
