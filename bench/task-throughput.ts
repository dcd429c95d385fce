/**
 * End-to-end task throughput: submit → dispatched → a no-op agent executes → completed and
 * persisted, with a window of tasks in flight. Beside it, the bare Moleculer call rate through the
 * same path (local call embedded; remote call over NATS), measured in the same run.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Context, ServiceBroker } from "moleculer";
import { agentMixin } from "../mixins/agent.mixin";
import type { Task } from "../src/types";
import { benchEnv, fmt, percentile, startNode, type BenchResult, runAsScript } from "./bench-kit";

const TASKS = Number(process.env.BENCH_TASKS ?? 5000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100);

export interface ThroughputFigures {
	tasksPerSec: number;
	p50: number;
	p99: number;
}

/** Submits `total` tasks keeping `window` in flight; resolves when every one is completed. */
export async function measureTasks(broker: ServiceBroker, total: number, window: number, type = "noop"): Promise<ThroughputFigures> {
	const submittedAt = new Map<string, number>();
	const latencies: number[] = [];
	let done = 0;
	let submitted = 0;
	let finish!: () => void;
	const finished = new Promise<void>(resolve => (finish = resolve));
	const submitOne = async (): Promise<void> => {
		if (submitted >= total) return;
		submitted++;
		const t0 = performance.now();
		const task = await broker.call<Task, object>("tasks.create", { type });
		if (!submittedAt.has(task.task_id)) submittedAt.set(task.task_id, t0);
	};
	const probe = broker.createService({
		name: `bench-probe-${randomBytes(3).toString("hex")}`,
		events: {
			"task.updated"(ctx: Context<{ task: Task }>) {
				const { task } = ctx.params;
				if (task.status !== "completed") return;
				const t0 = submittedAt.get(task.task_id);
				if (t0 === undefined) return;
				submittedAt.delete(task.task_id);
				latencies.push(performance.now() - t0);
				if (++done === total) finish();
				else void submitOne();
			}
		}
	});
	await broker.waitForServices(probe.name);
	const start = performance.now();
	await Promise.all(Array.from({ length: Math.min(window, total) }, () => submitOne()));
	await finished;
	const seconds = (performance.now() - start) / 1000;
	await broker.destroyService(probe);
	latencies.sort((a, b) => a - b);
	return { tasksPerSec: total / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** The bare baseline: `total` calls of a no-op action with the same window in flight. */
export async function measureBareCalls(broker: ServiceBroker, action: string, total: number, window: number, nodeID?: string): Promise<number> {
	let next = 0;
	const start = performance.now();
	await Promise.all(
		Array.from({ length: window }, async () => {
			while (next++ < total) await broker.call(action, {}, nodeID ? { nodeID } : {});
		})
	);
	return total / ((performance.now() - start) / 1000);
}

function line(label: string, ours: ThroughputFigures, bare: number): string[] {
	return [
		`${label}: ${fmt(ours.tasksPerSec)} tasks/s (p50 ${fmt(ours.p50, 1)} ms, p99 ${fmt(ours.p99, 1)} ms submit→completed at ${WINDOW} in flight)`,
		`${label}: bare Moleculer call ${fmt(bare)} calls/s; ratio ${fmt((100 * ours.tasksPerSec) / bare, 1)}%`
	];
}

async function embedded(): Promise<string[]> {
	const broker = await startNode(benchEnv(), ["agents", "tasks"], [
		{ name: "noop-agent", mixins: [agentMixin({ name: "embedded-noop", capabilities: ["noop"], concurrency: 256 })], methods: { handleTask: async () => ({ ok: true }) }, actions: { ping: () => ({ ok: true }) } }
	]);
	try {
		await waitForAgent(broker, "embedded-noop");
		await measureTasks(broker, Math.min(500, TASKS), WINDOW); // warm-up
		const ours = await measureTasks(broker, TASKS, WINDOW);
		const bare = await measureBareCalls(broker, "noop-agent.ping", TASKS * 4, WINDOW);
		return line("embedded (NeDB, no transporter)", ours, bare);
	} finally {
		await broker.stop();
	}
}

export async function waitForAgent(broker: ServiceBroker, name: string): Promise<void> {
	for (;;) {
		const { agents } = await broker.call<{ agents: Array<{ name: string; status: string }> }, object>("agents.list", {});
		if (agents.some(a => a.name === name && a.status === "active")) return;
		await new Promise(r => setTimeout(r, 100));
	}
}

/** Forks an agent node script of dist/bench (the no-op agent unless told otherwise); resolves once it has started. */
export function forkAgentNode(env: Record<string, string>, name: string, script = "noop-agent-node.js"): Promise<ChildProcess> {
	const child = fork(path.join(__dirname, script), [], { env: { ...process.env, ...env, AGENT_NAME: name, NODE_ID: `${name}-${process.pid}` }, stdio: "inherit" });
	return new Promise((resolve, reject) => {
		child.once("message", () => resolve(child));
		child.once("exit", code => reject(new Error(`agent node exited with ${code}`)));
	});
}

async function overNats(): Promise<string[]> {
	const env = benchEnv({ TRANSPORTER: process.env.BENCH_NATS ?? "nats://127.0.0.1:4222", NAMESPACE: `bench-${randomBytes(4).toString("hex")}` });
	const broker = await startNode(env, ["agents", "tasks"]);
	const child = await forkAgentNode(env, "nats-noop");
	try {
		await waitForAgent(broker, "nats-noop");
		await measureTasks(broker, Math.min(500, TASKS), WINDOW);
		const ours = await measureTasks(broker, TASKS, WINDOW);
		const bare = await measureBareCalls(broker, "noop-agent.ping", TASKS * 2, WINDOW, `nats-noop-${process.pid}`);
		return line("NATS (agent node in a 2nd process)", ours, bare);
	} finally {
		child.kill();
		await broker.stop();
	}
}

export async function runTaskThroughputBench(): Promise<BenchResult> {
	return { name: "Task throughput", lines: [...(await embedded()), ...(await overNats())] };
}

if (require.main === module) runAsScript(runTaskThroughputBench);
