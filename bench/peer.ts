/**
 * The peer scenario: the same job through us and through BullMQ, in one run. A producer (this
 * process) keeps 100 no-op jobs in flight; a worker in another process runs them; the producer
 * learns of each completion from the system's own event stream.
 *
 * - us: POST /api/v1/tasks to one full server node (`npm start`'s moleculer-runner, NeDB or
 *   PostgreSQL), a Moleculer agent node over NATS runs the no-op, completion seen over socket.io.
 * - BullMQ: Queue.add on this machine's Redis, a Worker process with concurrency 100, completion
 *   through QueueEvents.
 *
 * The server node's CPU per task is read from /proc over the measured round (its whole process:
 * GC, NATS, the store client). `BENCH_PEER_TASKS` sets the round size.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Queue, QueueEvents } from "bullmq";
import { io as ioClient, type Socket } from "socket.io-client";
import { Agent, request } from "undici";
import { mintToken } from "../src/platform/tokens";
import type { TaskUpdateMessage } from "../src/types";
import { fmt, percentile, runAsScript, type BenchResult } from "./bench-kit";
import { createBenchDatabase, startServerNode, type NodeProcess } from "./processes";
import { forkAgentNode } from "./task-throughput";

const TASKS = Number(process.env.BENCH_PEER_TASKS ?? 5000);
const WARMUP = Math.min(1000, TASKS);
const IN_FLIGHT = 100;
const NATS_URL = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222";
const REDIS_URL = process.env.BENCH_REDIS ?? "redis://127.0.0.1:6379";
const SECRETS = { JWT_SECRET: "bench-peer-secret-0123456789abcdef", API_KEY: "bench-peer-key" };

export interface PeerFigures {
	perSec: number;
	p50: number;
	p99: number;
	/** The server node's CPU milliseconds per task (ours only). */
	cpuMsPerTask?: number;
}

/**
 * Keeps `inFlight` jobs submitted until `total` have completed. `submit` resolves with the job's id;
 * `onCompleted` is called with ids as the system reports them (possibly before submit resolves).
 */
async function drive(total: number, inFlight: number, submit: () => Promise<string>, subscribe: (onCompleted: (id: string) => void) => void): Promise<PeerFigures> {
	const startedAt = new Map<string, number>();
	const early = new Set<string>();
	const latencies: number[] = [];
	let submitted = 0;
	let done = 0;
	let finish!: () => void;
	let fail!: (err: Error) => void;
	const finished = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
	const complete = (t0: number) => {
		latencies.push(performance.now() - t0);
		if (++done === total) finish();
		else next();
	};
	const next = () => {
		if (submitted >= total) return;
		submitted++;
		const t0 = performance.now();
		submit().then(id => {
			if (early.delete(id)) complete(t0);
			else startedAt.set(id, t0);
		}, fail);
	};
	subscribe(id => {
		const t0 = startedAt.get(id);
		if (t0 === undefined) return void early.add(id);
		startedAt.delete(id);
		complete(t0);
	});
	const start = performance.now();
	for (let i = 0; i < Math.min(inFlight, total); i++) next();
	await finished;
	const seconds = (performance.now() - start) / 1000;
	latencies.sort((a, b) => a - b);
	return { perSec: total / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** Completed task ids as socket.io delivers them, to whichever round is listening now. */
function completions(socket: Socket) {
	let listener: (id: string) => void = () => undefined;
	socket.on("task_update", (message: TaskUpdateMessage) => {
		if (message.status === "completed") listener(message.task_id);
	});
	return (onCompleted: (id: string) => void) => (listener = onCompleted);
}

/**
 * One round through us. With `nodes` > 1 (PostgreSQL only: the shared store), that many full
 * nodes share the store and the bus, submissions alternate between their gateways, and the CPU
 * per task is theirs summed.
 */
async function ours(store: "nedb" | "postgres", nodes = 1): Promise<PeerFigures> {
	const namespace = `bench-peer-${randomBytes(4).toString("hex")}`;
	const database = store === "postgres" ? await createBenchDatabase() : null;
	const env = {
		...SECRETS,
		NAMESPACE: namespace,
		TRANSPORTER: NATS_URL,
		DATA_DIR: path.join(require("node:os").tmpdir(), namespace),
		LOG_LEVEL: "error",
		MAX_CONCURRENT_TASKS: "100000",
		RATE_LIMIT_PER_MINUTE: "100000000",
		...(database ? { DATABASE_URL: database.url } : {})
	};
	const servers: NodeProcess[] = [];
	let agent: ChildProcess | undefined;
	let socket: Socket | undefined;
	const http = new Agent({ connections: IN_FLIGHT, pipelining: 1 });
	try {
		for (let n = 0; n < nodes; n++) servers.push(await startServerNode(env, `peer-${store}-${n + 1}`));
		const [server] = servers;
		// An agent node holds the API key only, as in production.
		const { JWT_SECRET: _serverOnly, ...agentEnv } = env;
		agent = await forkAgentNode(agentEnv, "peer-noop");
		const token = mintToken(SECRETS.JWT_SECRET, { sub: "bench", roles: ["operator"], expiresInSec: 3600 });
		socket = ioClient(server.url, { auth: { token }, transports: ["websocket"] });
		await new Promise<void>((resolve, reject) => (socket!.once("connect", resolve), socket!.once("connect_error", reject)));
		const urls = servers.map(s => `${s.url}/api/v1/tasks`);
		let turn = 0;
		const body = JSON.stringify({ type: "noop" });
		const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
		const submit = async () => {
			const res = await request(urls[turn++ % urls.length], { method: "POST", body, headers, dispatcher: http });
			const answer = (await res.body.json()) as { task_id?: string };
			if (res.statusCode !== 201 || !answer.task_id) throw new Error(`POST /tasks answered ${res.statusCode}: ${JSON.stringify(answer)}`);
			return answer.task_id;
		};
		const subscribe = completions(socket);
		// The agent is registered once a task completes: the warm-up waits for it.
		await drive(WARMUP, IN_FLIGHT, submit, subscribe);
		const cpuSeconds = () => servers.reduce((sum, s) => sum + s.cpuSeconds(), 0);
		const cpuBefore = cpuSeconds();
		const figures = await drive(TASKS, IN_FLIGHT, submit, subscribe);
		return { ...figures, cpuMsPerTask: ((cpuSeconds() - cpuBefore) * 1000) / TASKS };
	} finally {
		socket?.close();
		await http.close();
		agent?.kill();
		await Promise.all(servers.map(s => s.stop()));
		await database?.drop();
	}
}

async function bullmq(): Promise<PeerFigures> {
	const name = `bench-peer-${randomBytes(4).toString("hex")}`;
	const connection = { url: REDIS_URL };
	const queue = new Queue(name, { connection });
	const events = new QueueEvents(name, { connection });
	const worker = fork(path.join(__dirname, "bullmq-worker.js"), [], { env: { ...process.env, BENCH_QUEUE: name, BENCH_REDIS: REDIS_URL, BENCH_CONCURRENCY: String(IN_FLIGHT) } });
	try {
		await new Promise<void>((resolve, reject) => (worker.once("message", () => resolve()), worker.once("exit", code => reject(new Error(`BullMQ worker exited with ${code}`)))));
		await events.waitUntilReady();
		let listener: (id: string) => void = () => undefined;
		events.on("completed", ({ jobId }) => listener(jobId));
		const subscribe = (onCompleted: (id: string) => void) => (listener = onCompleted);
		// Completed jobs are removed, as a deployment that runs BullMQ for long does.
		const submit = async () => (await queue.add("noop", { type: "noop" }, { removeOnComplete: true })).id!;
		await drive(WARMUP, IN_FLIGHT, submit, subscribe);
		return await drive(TASKS, IN_FLIGHT, submit, subscribe);
	} finally {
		worker.kill();
		await events.close();
		await queue.obliterate({ force: true }).catch(() => undefined);
		await queue.close();
	}
}

const describe = (label: string, f: PeerFigures) =>
	`${label}: ${fmt(f.perSec)}/s (p50 ${fmt(f.p50, 1)} ms, p99 ${fmt(f.p99, 1)} ms submit→completion seen)` +
	(f.cpuMsPerTask !== undefined ? `, server node CPU ${fmt(f.cpuMsPerTask, 2)} ms/task` : "");

export async function runPeerBench(): Promise<BenchResult> {
	const bull = await bullmq();
	const nedb = await ours("nedb");
	const postgres = await ours("postgres");
	const twoCores = await ours("postgres", 2);
	const cpuRatio = twoCores.cpuMsPerTask! / postgres.cpuMsPerTask!;
	return {
		name: `Peer: REST → agent node over NATS → socket.io, ${IN_FLIGHT} in flight, ${fmt(TASKS)} tasks`,
		lines: [
			describe("BullMQ 6 (Queue.add → Worker process → QueueEvents, Redis)", bull),
			describe("us, one full node on NeDB", nedb),
			describe("us, one full node on PostgreSQL", postgres),
			describe("us, two full nodes on PostgreSQL (submissions alternate; CPU summed)", twoCores),
			`NeDB / BullMQ: ${fmt(nedb.perSec / bull.perSec, 2)}× (target ≥ 0.7×); PostgreSQL / NeDB: ${fmt(postgres.perSec / nedb.perSec, 2)}× (target ≥ 0.6×)`,
			`CPU per task: NeDB ${fmt(nedb.cpuMsPerTask!, 2)} ms (target ≤ 0.5), PostgreSQL ${fmt(postgres.cpuMsPerTask!, 2)} ms (target ≤ 1)`,
			`two core nodes / one on PostgreSQL: CPU per task summed ×${fmt(cpuRatio, 2)} (target ≤ ×1.2), throughput ×${fmt(twoCores.perSec / postgres.perSec, 2)} (target ≥ ×1.0)`
		]
	};
}

if (require.main === module) runAsScript(runPeerBench);
