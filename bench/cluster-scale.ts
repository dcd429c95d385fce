/**
 * Cluster mode over NATS, two scenarios:
 *  1. Scaling curve: task throughput through one core node (agents + tasks, embedded NeDB) with 1, 2
 *     and 4 agent nodes in their own processes. Each agent's task is a fixed wait, not CPU work, so a
 *     node has a known capacity (concurrency / work time) and a 2-core machine can show how far the
 *     core scales out before it saturates, rather than agents competing with it for the CPUs.
 *  2. Registry scale: 2,000 agents registered from a swarm process and heartbeating once a second
 *     each, while tasks flow through one real agent; measured on the core node: heartbeats handled,
 *     `agents.list` latency, memory per agent, task throughput and event-loop delay.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import type { ServiceBroker } from "moleculer";
import { allAgents } from "../src/runtime/agent-directory";
import type { Agent } from "../src/types";
import { benchEnv, fmt, percentile, startNode, type BenchResult, runAsScript } from "./bench-kit";
import { REGISTER_IN_FLIGHT, type SwarmChildMessage, type SwarmHeartbeatResult, type SwarmParentMessage } from "./heartbeat-swarm";
import { forkAgentNode, measureTasks, waitForAgent, type ThroughputFigures } from "./task-throughput";

const NATS_URL = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222";
const TASK_TYPE = "timed";

const NODE_COUNTS = [1, 2, 4];
const AGENT_CONCURRENCY = Number(process.env.BENCH_AGENT_CONCURRENCY ?? 8);
const TASK_WORK_MS = Number(process.env.BENCH_TASK_WORK_MS ?? 20);
const NODE_CAPACITY = (AGENT_CONCURRENCY * 1000) / TASK_WORK_MS;
const SCALE_TASKS = Number(process.env.BENCH_SCALE_TASKS ?? 2000);
const SCALE_WINDOW = Number(process.env.BENCH_SCALE_WINDOW ?? 400);
const WARMUP_TASKS = 500;

const REGISTRY_AGENTS = Number(process.env.BENCH_REGISTRY_AGENTS ?? 2000);
const REGISTRY_SECONDS = Number(process.env.BENCH_REGISTRY_SECONDS ?? 30);
/** The heartbeats alone first, for their own cost on the core node. */
const BEATS_ALONE_SECONDS = Number(process.env.BENCH_BEATS_ALONE_SECONDS ?? 10);
const BEATS_CPU_TARGET_PERCENT = 15;
const FLOW_TARGET_RATIO = 0.8;
const LIST_INTERVAL_MS = 100;
const FLOW_TASKS = 500;
const FLOW_WINDOW = 50;
/** An agent whose last heartbeat is older than this at the end of the window was not kept up with. */
const FRESH_HEARTBEAT_MS = 2000;
const LIST_LATENCY_TARGET_MS = 50;

const children = new Set<ChildProcess>();
// A bench that throws half-way must not leave agent nodes heartbeating into NATS.
process.on("exit", () => {
	for (const child of children) child.kill("SIGKILL");
});

function clusterEnv(): Record<string, string> {
	return benchEnv({
		TRANSPORTER: NATS_URL,
		// Runs sharing a NATS server (or a run after a crashed one) must not see each other's nodes.
		NAMESPACE: `bench-cluster-${randomBytes(4).toString("hex")}`,
		// Swarm heartbeats come every second; this only has to outlast a slow registration phase.
		HEARTBEAT_TIMEOUT_MS: "60000"
	});
}

function forkBenchNode(script: string, env: Record<string, string>, nodeId: string): ChildProcess {
	const child = fork(path.join(__dirname, script), [], { env: { ...process.env, ...env, NODE_ID: nodeId }, stdio: "inherit" });
	children.add(child);
	child.once("exit", () => children.delete(child));
	return child;
}

function nextMessage<T>(child: ChildProcess, what: string): Promise<T> {
	return new Promise((resolve, reject) => {
		const onExit = (code: number | null) => reject(new Error(`${what}: child exited with ${code}`));
		child.once("exit", onExit);
		child.once("message", message => {
			child.off("exit", onExit);
			resolve(message as T);
		});
	});
}

/** An agent node whose tasks take TASK_WORK_MS; resolves once the core has it as an active agent. */
async function startTimedAgent(broker: ServiceBroker, env: Record<string, string>, name: string): Promise<ChildProcess> {
	const child = await forkAgentNode({ ...env, AGENT_CONCURRENCY: String(AGENT_CONCURRENCY), TASK_WORK_MS: String(TASK_WORK_MS) }, name, "timed-agent-node.js");
	children.add(child);
	child.once("exit", () => children.delete(child));
	await waitForAgent(broker, name);
	return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise(resolve => child.once("exit", resolve));
	child.kill("SIGTERM");
	const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
	await exited;
	clearTimeout(timer);
}

async function tearDown(broker: ServiceBroker, env: Record<string, string>, nodes: ChildProcess[]): Promise<void> {
	await Promise.all(nodes.map(stopChild));
	await broker.stop();
	fs.rmSync(env.DATA_DIR, { recursive: true, force: true });
}

interface CpuFigures {
	/** This process, the core node: % of one core. */
	corePercent: number;
	/** Every process on the machine (agents, NATS, anyone else's): % of all cores. */
	machinePercent: number;
}

function machineTimes(): { busy: number; total: number } {
	let busy = 0;
	let total = 0;
	for (const { times } of os.cpus()) {
		const all = times.user + times.nice + times.sys + times.irq + times.idle;
		total += all;
		busy += all - times.idle;
	}
	return { busy, total };
}

/**
 * CPU over a stretch of wall time. The machine's figure tells a saturated core node apart from a
 * saturated machine: agent nodes, NATS and the core share the same few cores.
 */
function cpuMeter(): () => CpuFigures {
	const wallStart = performance.now();
	const processStart = process.cpuUsage();
	const machineStart = machineTimes();
	return () => {
		const { user, system } = process.cpuUsage(processStart);
		const machine = machineTimes();
		return {
			corePercent: (100 * (user + system)) / 1000 / (performance.now() - wallStart),
			machinePercent: (100 * (machine.busy - machineStart.busy)) / (machine.total - machineStart.total)
		};
	};
}

function cpuText({ corePercent, machinePercent }: CpuFigures): string {
	return `core node CPU ${fmt(corePercent)}% of a core, machine ${fmt(machinePercent)}% of ${os.cpus().length} cores`;
}

// ---------- 1. scaling curve ----------

interface ScalePoint {
	nodes: number;
	figures: ThroughputFigures;
	cpu: CpuFigures;
}

async function scalingCurve(): Promise<string[]> {
	const env = clusterEnv();
	const broker = await startNode(env, ["agents", "tasks"]);
	const agentNodes: ChildProcess[] = [];
	const points: ScalePoint[] = [];
	try {
		for (const nodes of NODE_COUNTS) {
			while (agentNodes.length < nodes) agentNodes.push(await startTimedAgent(broker, env, `timed-${agentNodes.length}`));
			if (points.length === 0) await measureTasks(broker, WARMUP_TASKS, SCALE_WINDOW, TASK_TYPE);
			const coreCpu = cpuMeter();
			const figures = await measureTasks(broker, SCALE_TASKS, SCALE_WINDOW, TASK_TYPE);
			points.push({ nodes, figures, cpu: coreCpu() });
		}
	} finally {
		await tearDown(broker, env, agentNodes);
	}
	const single = points[0].figures.tasksPerSec;
	return [
		`scaling: agent nodes of ${AGENT_CONCURRENCY} slots × ${TASK_WORK_MS} ms per task = ${fmt(NODE_CAPACITY)} tasks/s each; ${fmt(SCALE_TASKS)} tasks per point, ${SCALE_WINDOW} in flight`,
		...points.map(({ nodes, figures, cpu }) => {
			const ideal = nodes * NODE_CAPACITY;
			return (
				`scaling: ${nodes} agent node${nodes > 1 ? "s" : ""}: ${fmt(figures.tasksPerSec)} tasks/s = ×${fmt(figures.tasksPerSec / single, 2)} vs 1 node ` +
				`(ideal ${fmt(ideal)} tasks/s, ${fmt((100 * figures.tasksPerSec) / ideal)}% of it); ${cpuText(cpu)}; ` +
				`p50 ${fmt(figures.p50, 1)} ms, p99 ${fmt(figures.p99, 1)} ms submit→completed`
			);
		})
	];
}

// ---------- 2. registry scale ----------

let collectGarbage: (() => void) | undefined;

/** Heap after a full collection, so the difference between two snapshots is what stays alive. */
function memorySnapshot(): NodeJS.MemoryUsage {
	if (!collectGarbage) {
		// Without --expose-gc on the command line: the flag still takes effect for a new context.
		v8.setFlagsFromString("--expose-gc");
		collectGarbage = vm.runInNewContext("gc") as () => void;
	}
	collectGarbage();
	collectGarbage();
	return process.memoryUsage();
}

function perAgentKiB(after: NodeJS.MemoryUsage, before: NodeJS.MemoryUsage, field: "rss" | "heapUsed", agents: number): string {
	return `${fmt((after[field] - before[field]) / 1024 / agents, 1)} KiB`;
}

const MiB = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MiB`;

/** The largest page a client can ask for: the listing's worst case. */
async function listAgents(broker: ServiceBroker): Promise<Agent[]> {
	return (await broker.call<{ agents: Agent[] }, object>("agents.list", { limit: 1000 })).agents;
}

/** `agents.list` every LIST_INTERVAL_MS (one at a time: a slow answer delays the next) until `deadline`. */
async function sampleListLatency(broker: ServiceBroker, deadline: number): Promise<number[]> {
	const latencies: number[] = [];
	let nextAt = performance.now();
	while (performance.now() < deadline) {
		const t0 = performance.now();
		await listAgents(broker);
		latencies.push(performance.now() - t0);
		nextAt += LIST_INTERVAL_MS;
		const wait = nextAt - performance.now();
		if (wait > 0) await sleep(wait);
		else nextAt = performance.now();
	}
	return latencies.sort((a, b) => a - b);
}

function latencyLine(label: string, sorted: number[]): string {
	const p99 = percentile(sorted, 99);
	const verdict = p99 < LIST_LATENCY_TARGET_MS ? "meets" : "MISSES";
	return (
		`${label}: p50 ${fmt(percentile(sorted, 50), 1)} ms, p99 ${fmt(p99, 1)} ms, max ${fmt(sorted[sorted.length - 1], 1)} ms ` +
		`over ${sorted.length} calls (${verdict} the p99 < ${LIST_LATENCY_TARGET_MS} ms target)`
	);
}

interface FlowFigures {
	tasks: number;
	tasksPerSec: number;
	worstP99: number;
	rounds: number;
}

/** Rounds of FLOW_TASKS through the agent until `deadline`: shows tasks keep moving through the whole window. */
async function taskFlowUntil(broker: ServiceBroker, deadline: number): Promise<FlowFigures> {
	const rounds: ThroughputFigures[] = [];
	const start = performance.now();
	while (performance.now() < deadline) rounds.push(await measureTasks(broker, FLOW_TASKS, FLOW_WINDOW, TASK_TYPE));
	const tasks = rounds.length * FLOW_TASKS;
	return { tasks, tasksPerSec: tasks / ((performance.now() - start) / 1000), worstP99: Math.max(...rounds.map(r => r.p99)), rounds: rounds.length };
}

/** Heartbeat requests that reached the core's `agents.heartbeat`, from Moleculer's own request counter. */
function heartbeatsReceived(broker: ServiceBroker): number {
	const snapshot = (broker.metrics.getMetric("moleculer.request.total")?.snapshot() ?? []) as Array<{ labels: Record<string, unknown>; value: number }>;
	return snapshot.filter(item => item.labels.action === "agents.heartbeat").reduce((sum, item) => sum + item.value, 0);
}

async function registryScale(): Promise<string[]> {
	const env = clusterEnv();
	const broker = await startNode(env, ["agents", "tasks"]);
	const nodes: ChildProcess[] = [];
	try {
		nodes.push(await startTimedAgent(broker, env, "flow-agent"));
		// Also the warm-up: the flow below is compared with this one, without 2,000 agents.
		await measureTasks(broker, FLOW_TASKS, FLOW_WINDOW, TASK_TYPE);
		const quietFlow = await measureTasks(broker, FLOW_TASKS, FLOW_WINDOW, TASK_TYPE);
		const beforeRegistration = memorySnapshot();

		const swarm = forkBenchNode("heartbeat-swarm.js", { ...env, SWARM_AGENTS: String(REGISTRY_AGENTS) }, `swarm-${process.pid}`);
		nodes.push(swarm);
		const registered = await nextMessage<SwarmChildMessage>(swarm, "heartbeat swarm");
		if (registered.type !== "registered") throw new Error(`heartbeat swarm: ${JSON.stringify(registered)}`);
		const afterRegistration = memorySnapshot();
		// The listing's own cost, before heartbeats and tasks compete with it for the event loop.
		const idleList = await sampleListLatency(broker, performance.now() + 3000);

		// The beats alone: what liveness costs the core node.
		const aloneDone = nextMessage<SwarmChildMessage>(swarm, "heartbeat swarm");
		const aloneCpu = cpuMeter();
		const aloneReceivedBefore = heartbeatsReceived(broker);
		const aloneStart = performance.now();
		swarm.send({ type: "heartbeat", seconds: BEATS_ALONE_SECONDS } satisfies SwarmParentMessage);
		const alone = await aloneDone;
		if (alone.type !== "heartbeats") throw new Error(`heartbeat swarm: ${JSON.stringify(alone)}`);
		const beatsAloneCpu = aloneCpu();
		const aloneReceived = (heartbeatsReceived(broker) - aloneReceivedBefore) / ((performance.now() - aloneStart) / 1000);

		const heartbeatsDone = nextMessage<SwarmChildMessage>(swarm, "heartbeat swarm");
		const receivedBefore = heartbeatsReceived(broker);
		const loopDelay = monitorEventLoopDelay({ resolution: 10 });
		loopDelay.enable();
		const coreCpu = cpuMeter();
		const windowStart = performance.now();
		swarm.send({ type: "heartbeat", seconds: REGISTRY_SECONDS } satisfies SwarmParentMessage);
		const deadline = windowStart + REGISTRY_SECONDS * 1000;
		const flowDone = taskFlowUntil(broker, deadline);
		const busyList = await sampleListLatency(broker, deadline);
		// Taken at the end of the heartbeat window: a slow last task round may run on past it.
		const windowSeconds = (performance.now() - windowStart) / 1000;
		const windowCpu = coreCpu();
		const received = heartbeatsReceived(broker) - receivedBefore;
		loopDelay.disable();
		const listed = await allAgents(broker);
		const now = Date.now();
		const swarmAgents = listed.filter(a => a.name.startsWith("reg-"));
		const held = swarmAgents.filter(a => a.status === "active" && now - Date.parse(a.last_heartbeat) <= FRESH_HEARTBEAT_MS).length;
		const flow = await flowDone;

		const done = await heartbeatsDone;
		if (done.type !== "heartbeats") throw new Error(`heartbeat swarm: ${JSON.stringify(done)}`);
		const beats: SwarmHeartbeatResult = done;
		const afterHeartbeats = memorySnapshot();

		return [
			`registry: ${fmt(registered.agents)} agents registered in ${fmt(registered.ms / 1000, 1)} s (${fmt(registered.agents / (registered.ms / 1000))} registrations/s, ${REGISTER_IN_FLIGHT} in flight)`,
			`registry: heartbeats over ${fmt(beats.seconds, 1)} s: ${fmt(beats.ackedPerSec)}/s acknowledged (target ${fmt(REGISTRY_AGENTS)}/s); ` +
				`${fmt(beats.acked)} acked, ${fmt(beats.failed)} failed, ${fmt(beats.skipped)} skipped (previous still unanswered) of ${fmt(beats.due)} due; ` +
				`round trip p50 ${fmt(beats.p50, 1)} ms, p99 ${fmt(beats.p99, 1)} ms, max ${fmt(beats.max, 1)} ms` +
				(beats.firstError ? `; first error: ${beats.firstError}` : ""),
			`registry: heartbeats alone for ${BEATS_ALONE_SECONDS} s: core node took ${fmt(aloneReceived)}/s (p99 round trip ${fmt(alone.p99, 1)} ms) at ${cpuText(beatsAloneCpu)} ` +
				`(${beatsAloneCpu.corePercent <= BEATS_CPU_TARGET_PERCENT ? "meets" : "MISSES"} the ≤ ${BEATS_CPU_TARGET_PERCENT}% of a core target)`,
			`registry: core node received ${fmt(received / windowSeconds)} heartbeats/s; at the end ${fmt(held)} of ${fmt(swarmAgents.length)} swarm agents active with a heartbeat ≤ ${FRESH_HEARTBEAT_MS / 1000} s old`,
			latencyLine(`registry: agents.list (a page of 1,000 of ${fmt(listed.length)} agents), idle`, idleList),
			latencyLine(`registry: agents.list during heartbeats + tasks`, busyList),
			`registry: core node memory for ${fmt(registered.agents)} agents (after a full GC): heap +${MiB(afterRegistration.heapUsed - beforeRegistration.heapUsed)} ` +
				`= ${perAgentKiB(afterRegistration, beforeRegistration, "heapUsed", registered.agents)}/agent; rss ${MiB(beforeRegistration.rss)} → ${MiB(afterRegistration.rss)} ` +
				`(${perAgentKiB(afterRegistration, beforeRegistration, "rss", registered.agents)}/agent, moves with the allocator's pages); ` +
				`after the window (+${fmt(flow.tasks)} tasks stored) heap ${MiB(afterHeartbeats.heapUsed)}, rss ${MiB(afterHeartbeats.rss)}`,
			`registry: task flow through 1 agent node: ${fmt(flow.tasksPerSec)} tasks/s during the window (${fmt(flow.tasks)} tasks in ${flow.rounds} rounds of ${FLOW_TASKS}, ` +
				`worst round p99 ${fmt(flow.worstP99, 1)} ms) vs ${fmt(quietFlow.tasksPerSec)} tasks/s (p99 ${fmt(quietFlow.p99, 1)} ms) before registration = ×${fmt(flow.tasksPerSec / quietFlow.tasksPerSec, 2)} ` +
				`(${flow.tasksPerSec >= FLOW_TARGET_RATIO * quietFlow.tasksPerSec ? "meets" : "MISSES"} the ≥ ×${FLOW_TARGET_RATIO} target); capacity ${fmt(NODE_CAPACITY)} tasks/s`,
			`registry: ${cpuText(windowCpu)}; core event-loop delay p50 ${fmt(loopDelay.percentile(50) / 1e6, 1)} ms, ` +
				`p99 ${fmt(loopDelay.percentile(99) / 1e6, 1)} ms, max ${fmt(loopDelay.max / 1e6, 1)} ms`
		];
	} finally {
		await tearDown(broker, env, nodes);
	}
}

export async function runClusterScaleBench(): Promise<BenchResult> {
	// BENCH_CLUSTER_PARTS=scaling or =registry runs one of the two.
	const parts = (process.env.BENCH_CLUSTER_PARTS ?? "scaling,registry").split(",");
	const lines = [...(parts.includes("scaling") ? await scalingCurve() : []), ...(parts.includes("registry") ? await registryScale() : [])];
	return { name: "Cluster mode (NATS)", lines };
}

if (require.main === module) runAsScript(runClusterScaleBench);
