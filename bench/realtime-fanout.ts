/**
 * Real-time fan-out: 1,000 socket.io listeners (in a second process) and 1,000 task events
 * emitted as `task.updated` on the gateway node, relayed by the realtime service (auth, per-client
 * filter and buffer checks, encode once per event). Beside it, in the same run, a bare socket.io
 * server doing `io.emit` of the same message to the same number of clients.
 *
 * Events are emitted one per event-loop turn: a burst as fast as the server can take it, so
 * latency includes the queueing in front of the clients and events/s is the delivery rate.
 */
import { fork } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { Server } from "socket.io";
import { localGatewayPort } from "../src/gateway/local-gateway";
import { mintToken } from "../src/platform/tokens";
import type { TaskUpdateMessage } from "../src/types";
import { benchEnv, fmt, startNode, type BenchResult, runAsScript } from "./bench-kit";
import type { ChildMessage, FanoutClientResult, ParentMessage } from "./realtime-fanout-clients";

const CLIENTS = Number(process.env.BENCH_WS_CLIENTS ?? 1000);
const EVENTS = Number(process.env.BENCH_WS_EVENTS ?? 1000);
const SECRET = "bench-secret";

interface FanoutFigures {
	p50: number;
	p99: number;
	max: number;
	deliveriesPerSec: number;
	delivered: number;
	expected: number;
}

const now = () => performance.timeOrigin + performance.now();
const nextTurn = () => new Promise(resolve => setImmediate(resolve));

function taskUpdate(index: number): TaskUpdateMessage {
	return {
		type: "task_update",
		task_id: `bench-${index}`,
		pipeline_id: "bench-pipeline",
		run_id: "bench-run",
		assigned_agent: "bench-agent",
		status: "running",
		progress: index / EVENTS,
		timestamp: new Date().toISOString()
	};
}

/** Forks the listener process, waits until all are connected, runs `emitAll`, collects the figures. */
async function measure(url: string, token: string, emitAll: (sentAt: number[]) => Promise<void>): Promise<FanoutFigures> {
	const child = fork(path.join(__dirname, "realtime-fanout-clients.js"), [], {
		env: { ...process.env, BENCH_URL: url, BENCH_TOKEN: token, BENCH_CLIENTS: String(CLIENTS), BENCH_EVENTS: String(EVENTS) },
		stdio: "inherit"
	});
	try {
		const next = () =>
			new Promise<ChildMessage>((resolve, reject) => {
				child.once("message", message => resolve(message as ChildMessage));
				child.once("exit", code => reject(new Error(`listener process exited with ${code}`)));
			});
		const ready = await next();
		if (ready.type !== "ready") throw new Error(`listener process: ${JSON.stringify(ready)}`);
		const sentAt: number[] = [];
		await emitAll(sentAt);
		const resultReady = next();
		child.send({ type: "sent", sentAt } satisfies ParentMessage);
		const result = await resultReady;
		if (result.type !== "result") throw new Error(`listener process: ${JSON.stringify(result)}`);
		return figures(result, sentAt[0]);
	} finally {
		child.kill();
	}
}

function figures(result: FanoutClientResult, firstSentAt: number): FanoutFigures {
	const seconds = (result.lastReceivedAt - firstSentAt) / 1000;
	return {
		p50: result.p50,
		p99: result.p99,
		max: result.max,
		deliveriesPerSec: result.received / seconds,
		delivered: result.received,
		expected: result.expected
	};
}

async function measureRealtime(): Promise<FanoutFigures> {
	const broker: ServiceBroker = await startNode(
		// 1,000 clients from one address, connecting at once: past the per-address cap on sockets not yet authenticated.
		benchEnv({ JWT_SECRET: SECRET, MAX_WS_CONNECTIONS: String(CLIENTS + 100), WS_MAX_UNAUTHENTICATED_PER_IP: String(CLIENTS + 100) }),
		["api", "realtime"]
	);
	try {
		const port = localGatewayPort(broker);
		const token = mintToken(SECRET, { sub: "bench-viewer", roles: ["viewer"], expiresInSec: 3600 });
		return await measure(`http://127.0.0.1:${port}`, token, async sentAt => {
			for (let i = 0; i < EVENTS; i++) {
				const { task_id, pipeline_id, run_id, assigned_agent, status, progress } = taskUpdate(i);
				sentAt.push(now());
				await broker.emit("task.updated", { task: { task_id, pipeline_id, run_id, assigned_agent, status, progress } });
				await nextTurn();
			}
		});
	} finally {
		await broker.stop();
	}
}

async function measureBareSocketIo(): Promise<FanoutFigures> {
	const server = http.createServer();
	const io = new Server(server, { serveClient: false });
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	try {
		const port = (server.address() as AddressInfo).port;
		return await measure(`http://127.0.0.1:${port}`, "", async sentAt => {
			for (let i = 0; i < EVENTS; i++) {
				sentAt.push(now());
				io.emit("task_update", taskUpdate(i));
				await nextTurn();
			}
		});
	} finally {
		await new Promise(resolve => io.close(resolve));
	}
}

function line(label: string, f: FanoutFigures): string {
	const lost = f.delivered < f.expected ? ` (${fmt(f.expected - f.delivered)} NOT delivered)` : "";
	return `${label}: ${fmt(f.deliveriesPerSec)} deliveries/s; latency p50 ${fmt(f.p50, 1)} ms, p99 ${fmt(f.p99, 1)} ms, max ${fmt(f.max, 1)} ms${lost}`;
}

export async function runRealtimeFanoutBench(): Promise<BenchResult> {
	const bare = await measureBareSocketIo();
	const ours = await measureRealtime();
	return {
		name: `Real-time fan-out (${fmt(CLIENTS)} socket.io clients × ${fmt(EVENTS)} task events)`,
		lines: [
			line("realtime service (task.updated → socket.io)", ours),
			line("bare socket.io io.emit", bare),
			`ratio: ${fmt((100 * ours.deliveriesPerSec) / bare.deliveriesPerSec, 1)}% of bare deliveries/s; p50 latency ×${fmt(ours.p50 / bare.p50, 2)}`
		]
	};
}

if (require.main === module) runAsScript(runRealtimeFanoutBench);
