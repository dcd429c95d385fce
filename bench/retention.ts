/**
 * Retention: what 100,000 tasks through one node leave behind (issue #15). One full server node on
 * NeDB (`npm start`'s moleculer-runner) with a short TASK_RETENTION_DAYS, a no-op Moleculer agent
 * node over NATS, 100 tasks in flight through REST, completions seen over socket.io. Then the
 * server's RSS (VmRSS from /proc, and its peak VmHWM) and the size of its NeDB files, and the time
 * from spawning the node again on the same files to `/ready` answering 200.
 *
 * `BENCH_RETENTION_TASKS` (100000) sets the count, `BENCH_RETENTION_DAYS` (0.0002, 17 s) the retention.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io as ioClient, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { Agent, request } from "undici";
import { retentionPolicy, sweepIntervalMs } from "../src/domain/retention";
import { mintToken } from "../src/platform/tokens";
import type { TaskUpdateMessage } from "../src/types";
import { fmt, runAsScript, type BenchResult } from "./bench-kit";
import { freePort, startServerNode, type NodeProcess } from "./processes";
import { forkAgentNode } from "./task-throughput";

const TASKS = Number(process.env.BENCH_RETENTION_TASKS ?? 100_000);
const RETENTION_DAYS = process.env.BENCH_RETENTION_DAYS ?? "0.0002";
const IN_FLIGHT = 100;
const NATS_URL = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222";
const SECRETS = { JWT_SECRET: "bench-retention-secret-0123456789ab", API_KEY: "bench-retention-key" };
const RSS_TARGET_MIB = 300;
const READY_TARGET_S = 3;
const MIB = 1024 * 1024;

/** A field of /proc/<pid>/status in bytes (VmRSS: resident now; VmHWM: the peak). */
export function procStatusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
	const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find(l => l.startsWith(`${field}:`));
	return Number(/(\d+)\s*kB/.exec(line ?? "")?.[1] ?? NaN) * 1024;
}

/** The NeDB files' sizes, by collection. */
function dataFiles(dir: string): Record<string, number> {
	return Object.fromEntries(fs.readdirSync(dir).filter(f => f.endsWith(".db")).map(f => [f.replace(/\.db$/, ""), fs.statSync(path.join(dir, f)).size]));
}

const sum = (sizes: Record<string, number>) => Object.values(sizes).reduce((a, b) => a + b, 0);
const bySize = (sizes: Record<string, number>) =>
	Object.entries(sizes).sort(([, a], [, b]) => b - a).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${fmt(n / MIB, 1)}`).join(", ");

/** Keeps IN_FLIGHT tasks submitted until `total` have completed (seen over socket.io). */
async function pushTasks(server: NodeProcess, socket: Socket, token: string, total: number): Promise<number> {
	const http = new Agent({ connections: IN_FLIGHT, pipelining: 1 });
	const url = `${server.url}/api/v1/tasks`;
	const body = JSON.stringify({ type: "noop" });
	const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
	const pending = new Set<string>();
	const early = new Set<string>();
	let submitted = 0;
	let done = 0;
	let finish!: () => void;
	let fail!: (err: Error) => void;
	const finished = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
	const completed = () => {
		if (++done === total) finish();
		else if (done % 20_000 === 0) console.error(`retention bench: ${fmt(done)} of ${fmt(total)} tasks completed`);
		next();
	};
	const next = () => {
		if (submitted >= total) return;
		submitted++;
		void request(url, { method: "POST", body, headers, dispatcher: http })
			.then(async res => {
				const answer = (await res.body.json()) as { task_id?: string };
				if (res.statusCode !== 201 || !answer.task_id) throw new Error(`POST /tasks answered ${res.statusCode}: ${JSON.stringify(answer)}`);
				if (early.delete(answer.task_id)) completed();
				else pending.add(answer.task_id);
			})
			.catch(fail);
	};
	socket.on("task_update", (message: TaskUpdateMessage) => {
		if (message.status !== "completed") return;
		if (pending.delete(message.task_id)) completed();
		else early.add(message.task_id);
	});
	const start = performance.now();
	for (let i = 0; i < Math.min(IN_FLIGHT, total); i++) next();
	await finished;
	socket.off("task_update");
	await http.close();
	return total / ((performance.now() - start) / 1000);
}

async function stored(server: NodeProcess, token: string, path = "/api/v1/tasks"): Promise<number> {
	const res = await fetch(`${server.url}${path}?limit=1`, { headers: { authorization: `Bearer ${token}` } });
	const answer = (await res.json()) as { total?: number };
	if (res.status !== 200 || typeof answer.total !== "number") throw new Error(`GET /tasks answered ${res.status}: ${JSON.stringify(answer)}`);
	return answer.total;
}

/** The V8 heap in use as the node's own metrics report it (Moleculer's process figures, read at their last collection). */
async function heapUsed(server: NodeProcess): Promise<number> {
	const text = await (await fetch(`${server.url}/metrics`)).text();
	return Number(/^process_memory_heap_size_used(?:_bytes)?\{[^}]*\} (\d+(?:\.\d+)?)$/m.exec(text)?.[1] ?? NaN);
}

/**
 * A full garbage collection in the server node through its inspector (Chrome DevTools protocol on
 * loopback), then its V8 heap in use: what the node really holds, apart from garbage V8 has not
 * collected yet (the RSS includes that, and the heap V8 keeps for later).
 */
async function liveHeapAfterGc(inspectPort: number): Promise<number> {
	const [target] = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
	const ws = new WebSocket(target.webSocketDebuggerUrl);
	await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
	let id = 0;
	const send = (method: string, params: object = {}) =>
		new Promise<{ result?: { result?: { value?: string } } }>(resolve => {
			const mine = ++id;
			const onMessage = (data: WebSocket.RawData) => {
				const message = JSON.parse(String(data)) as { id?: number };
				if (message.id === mine) (ws.off("message", onMessage), resolve(message as never));
			};
			ws.on("message", onMessage);
			ws.send(JSON.stringify({ id: mine, method, params }));
		});
	try {
		await send("HeapProfiler.collectGarbage");
		const answer = await send("Runtime.evaluate", { expression: "process.memoryUsage().heapUsed", returnByValue: true });
		return Number((answer.result?.result as { value?: number } | undefined)?.value ?? NaN);
	} finally {
		ws.close();
	}
}

/** What the node holds now: its RSS, its heap, its files, the tasks and audit records stored. */
async function snapshot(server: NodeProcess, dataDir: string, token: string, admin: string) {
	const pid = server.child.pid!;
	return {
		rss: procStatusBytes(pid, "VmRSS"), peak: procStatusBytes(pid, "VmHWM"), heap: await heapUsed(server), files: dataFiles(dataDir),
		tasks: await stored(server, token), audited: await stored(server, admin, "/api/v1/audit")
	};
}

export async function runRetentionBench(): Promise<BenchResult> {
	const namespace = `bench-retention-${randomBytes(4).toString("hex")}`;
	const dataDir = path.join(os.tmpdir(), namespace);
	const env = {
		...SECRETS,
		NAMESPACE: namespace,
		TRANSPORTER: NATS_URL,
		DATA_DIR: dataDir,
		LOG_LEVEL: "error",
		MAX_CONCURRENT_TASKS: "100000",
		RATE_LIMIT_PER_MINUTE: "100000000",
		TASK_RETENTION_DAYS: RETENTION_DAYS
	};
	const inspectPort = await freePort();
	const inspected = { ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --inspect=127.0.0.1:${inspectPort}`.trim() };
	const retentionMs = retentionPolicy({ taskDays: Number(RETENTION_DAYS), runDays: 30 }).taskMs;
	const token = mintToken(SECRETS.JWT_SECRET, { sub: "bench", roles: ["operator"], expiresInSec: 7200 });
	const admin = mintToken(SECRETS.JWT_SECRET, { sub: "bench-admin", roles: ["admin"], expiresInSec: 7200 });
	let server: NodeProcess | undefined;
	let agent: ChildProcess | undefined;
	let socket: Socket | undefined;
	try {
		// The same spawn on empty files: what a start costs before any data (module loading, the broker, NATS).
		const firstAt = performance.now();
		server = await startServerNode(inspected, "retention");
		const firstReadySec = (performance.now() - firstAt) / 1000;
		const empty = await snapshot(server, dataDir, token, admin);
		const { JWT_SECRET: _serverOnly, ...agentEnv } = env;
		agent = await forkAgentNode(agentEnv, "retention-noop");
		socket = ioClient(server.url, { auth: { token }, transports: ["websocket"] });
		await new Promise<void>((resolve, reject) => (socket!.once("connect", resolve), socket!.once("connect_error", reject)));
		const perSec = await pushTasks(server, socket, token, TASKS);
		const atEnd = await snapshot(server, dataDir, token, admin);
		// Left behind: once the last tasks are past their retention and two sweeps have run.
		await new Promise(resolve => setTimeout(resolve, retentionMs + 2 * sweepIntervalMs(retentionMs) + 2000));
		const after = await snapshot(server, dataDir, token, admin);
		const live = await liveHeapAfterGc(inspectPort);
		const rssAfterGc = procStatusBytes(server.child.pid!, "VmRSS");
		socket.close();
		agent.kill();
		await server.stop();
		server = undefined;
		const spawnedAt = performance.now();
		server = await startServerNode(env, "retention-restart");
		const readySec = (performance.now() - spawnedAt) / 1000;
		const restarted = await snapshot(server, dataDir, token, admin);
		const mark = (ok: boolean) => (ok ? "met" : "MISSED");
		const mib = (n: number) => `${fmt(n / MIB, 1)} MiB`;
		const files = (f: Record<string, number>) => `${mib(sum(f))} (${bySize(f)})`;
		return {
			name: `Retention: ${fmt(TASKS)} tasks through one node (NeDB, TASK_RETENTION_DAYS=${RETENTION_DAYS} ≈ ${fmt(retentionMs / 1000, 1)} s, ${IN_FLIGHT} in flight over REST, a no-op agent node over NATS)`,
			lines: [
				`flow: ${fmt(perSec)} tasks/s; an empty node before it: RSS ${mib(empty.rss)}, V8 heap used ${mib(empty.heap)}`,
				`at the end of the flow: ${fmt(atEnd.tasks)} tasks stored (the last ≈ ${fmt(retentionMs / 1000, 1)} s of traffic), ${fmt(atEnd.audited)} audit records; RSS ${mib(atEnd.rss)} (peak ${mib(atEnd.peak)}), heap used ${mib(atEnd.heap)}; NeDB files ${files(atEnd.files)}`,
				`left behind (${fmt((retentionMs + 2 * sweepIntervalMs(retentionMs) + 2000) / 1000, 0)} s later): ${fmt(after.tasks)} tasks, ${fmt(after.audited)} audit records (AUDIT_RETENTION_DAYS, 90 by default); NeDB files ${files(after.files)}`,
				`server RSS left behind: ${mib(after.rss)} (target ≤ ${RSS_TARGET_MIB} MiB: ${mark(after.rss <= RSS_TARGET_MIB * MIB)}), V8 heap used ${mib(after.heap)}; after a full GC: heap ${mib(live)} live, RSS ${mib(rssAfterGc)}`,
				`restart → /ready 200: ${fmt(readySec, 2)} s (target ≤ ${READY_TARGET_S} s: ${mark(readySec <= READY_TARGET_S)}); the first start on empty files took ${fmt(firstReadySec, 2)} s; RSS after the restart ${mib(restarted.rss)}, heap used ${mib(restarted.heap)}`
			]
		};
	} finally {
		socket?.close();
		agent?.kill();
		await server?.stop();
		fs.rmSync(dataDir, { recursive: true, force: true });
	}
}

if (require.main === module) runAsScript(runRetentionBench);
