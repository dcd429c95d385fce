/**
 * Pipeline engine benchmark: one in-process node (embedded NeDB in a temp DATA_DIR, no transporter)
 * with the compiled agents, tasks and pipelines services and an in-process Moleculer agent whose
 * tasks finish at once, so what is measured is the engine, not the work.
 *
 * - bare tasks/s: single tasks through the same dispatcher and agent, the baseline;
 * - six-stage runs/s: 100 runs of a sequential no-op pipeline executed at once;
 * - stage transition latency: from a stage task's `completed` event to the `pending` event of the
 *   next stage's task, under that load and with one run at a time.
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { agentMixin } from "../mixins/agent.mixin";
import { EVENTS, STAGE_TYPES, type Pipeline, type Task } from "../src/types";
import { benchEnv, percentile, startNode, type BenchResult, runAsScript } from "./bench-kit";
import { waitForAgent } from "./task-throughput";

const CONCURRENT_RUNS = 100;
const STAGES = 6;
const BARE_TASKS = CONCURRENT_RUNS * STAGES;
const ISOLATED_RUNS = 20;
const WARMUP_RUNS = 10;
const TIMEOUT_MS = 120_000;

type RunEvent = { run: { run_id: string; status: string } };

/** Event timestamps the probe service collects, keyed so transitions can be paired up afterwards. */
class Recorder {
	/** `${run_id}:${stage}` → when its task completed / when its task was created. */
	readonly completedAt = new Map<string, number>();
	readonly createdAt = new Map<string, number>();
	readonly finishedRuns = new Map<string, number>();
	readonly completedTasks = new Set<string>();
	private waiters: Array<() => void> = [];

	onTask(task: Task) {
		const now = performance.now();
		if (task.run_id !== null && task.stage !== null) {
			const key = `${task.run_id}:${task.stage}`;
			if (task.status === "pending" && !this.createdAt.has(key)) this.createdAt.set(key, now);
			if (task.status === "completed") this.completedAt.set(key, now);
		} else if (task.status === "completed") this.completedTasks.add(task.task_id);
		this.wake();
	}

	onRun(event: RunEvent) {
		if (event.run.status !== "running" && !this.finishedRuns.has(event.run.run_id)) this.finishedRuns.set(event.run.run_id, performance.now());
		this.wake();
	}

	private wake() {
		const waiters = this.waiters;
		this.waiters = [];
		for (const wake of waiters) wake();
	}

	async until(done: () => boolean, what: string) {
		const deadline = Date.now() + TIMEOUT_MS;
		while (!done()) {
			if (Date.now() > deadline) throw new Error(`benchmark: ${what} did not happen within ${TIMEOUT_MS} ms`);
			await new Promise<void>(resolve => {
				this.waiters.push(resolve);
				setTimeout(resolve, 100).unref();
			});
		}
	}

	/** Milliseconds from stage k's completion to stage k+1's task creation, for the given runs. */
	transitions(runIds: string[]): number[] {
		const samples: number[] = [];
		for (const runId of runIds)
			for (let stage = 0; stage < STAGES - 1; stage++) {
				const completed = this.completedAt.get(`${runId}:${stage}`);
				const created = this.createdAt.get(`${runId}:${stage + 1}`);
				if (completed !== undefined && created !== undefined) samples.push(created - completed);
			}
		return samples;
	}
}

const sortedPercentile = (samples: number[], p: number) => percentile([...samples].sort((a, b) => a - b), p);
const ms = (value: number) => `${value.toFixed(2)} ms`;
const rate = (count: number, elapsedMs: number) => (count / (elapsedMs / 1000)).toFixed(1);

export async function runPipelineBench(): Promise<BenchResult> {
	const env = benchEnv({ NODE_ID: `pipeline-bench-${process.pid}`, HEALTH_CHECK_INTERVAL_MS: "600000", HEARTBEAT_TIMEOUT_MS: "600000" });
	const recorder = new Recorder();
	const agent: Partial<ServiceSchema> = {
		name: "bench-agent",
		mixins: [agentMixin({ name: "bench-agent", capabilities: ["task-execution"], concurrency: CONCURRENT_RUNS * 2 })],
		methods: {
			async handleTask() {
				return { ok: true };
			}
		}
	};
	const probe: Partial<ServiceSchema> = {
		name: "bench-probe",
		events: {
			[EVENTS.taskUpdated](ctx: Context<{ task: Task }>) {
				recorder.onTask(ctx.params.task);
			},
			[EVENTS.pipelineProgress](ctx: Context<RunEvent>) {
				recorder.onRun(ctx.params);
			}
		}
	};
	let started: ServiceBroker | undefined;
	try {
		const broker = (started = await startNode(env, ["agents", "tasks", "pipelines"], [agent, probe]));
		await waitForAgent(broker, "bench-agent");

		const pipeline = await broker.call<Pipeline, object>("pipelines.create", {
			name: "bench-six-stages",
			stages: STAGE_TYPES.map(type => ({ name: `noop-${type}`, type, retry_count: 0 }))
		});
		const execute = () => broker.call<{ run_id: string }, object>("pipelines.execute", { id: pipeline.pipeline_id, input_data: {} });
		const runsDone = (ids: string[]) => () => ids.every(id => recorder.finishedRuns.has(id));

		// Warm-up: JIT, store files and caches, so the first measured run is not the slowest.
		const warm = await Promise.all(Array.from({ length: WARMUP_RUNS }, execute));
		await recorder.until(runsDone(warm.map(r => r.run_id)), "warm-up runs");

		// Baseline: single tasks through the same dispatcher and agent.
		const bareStart = performance.now();
		const bare = await Promise.all(Array.from({ length: BARE_TASKS }, () => broker.call<Task, object>("tasks.create", { type: "processing", retry_count: 0 })));
		await recorder.until(() => bare.every(t => recorder.completedTasks.has(t.task_id)), "bare tasks");
		const bareMs = performance.now() - bareStart;

		// Load: 100 six-stage runs at once.
		const loadStart = performance.now();
		const loaded = (await Promise.all(Array.from({ length: CONCURRENT_RUNS }, execute))).map(r => r.run_id);
		await recorder.until(runsDone(loaded), "concurrent runs");
		const loadMs = Math.max(...loaded.map(id => recorder.finishedRuns.get(id) as number)) - loadStart;
		const loadedTransitions = recorder.transitions(loaded);

		// No load: one run at a time, the engine's own overhead per transition.
		const isolated: string[] = [];
		for (let i = 0; i < ISOLATED_RUNS; i++) {
			const { run_id } = await execute();
			await recorder.until(runsDone([run_id]), "isolated run");
			isolated.push(run_id);
		}
		const isolatedTransitions = recorder.transitions(isolated);

		const runsPerSec = Number(rate(CONCURRENT_RUNS, loadMs));
		const p50Loaded = sortedPercentile(loadedTransitions, 50);
		const p50Isolated = sortedPercentile(isolatedTransitions, 50);
		return {
			name: "pipelines",
			lines: [
				`setup: one node, embedded NeDB in a temp DATA_DIR, no transporter, in-process Moleculer agent with no-op tasks, MAX_CONCURRENT_TASKS=${env.MAX_CONCURRENT_TASKS}`,
				`bare tasks: ${BARE_TASKS} single tasks at once in ${ms(bareMs)} → ${rate(BARE_TASKS, bareMs)} tasks/s`,
				`six-stage runs: ${CONCURRENT_RUNS} at once in ${ms(loadMs)} → ${runsPerSec} runs/s (${rate(CONCURRENT_RUNS * STAGES, loadMs)} stage tasks/s; target >= 100 runs/s: ${runsPerSec >= 100 ? "met" : "NOT met"})`,
				`stage transition (task completed → next stage's task created), ${CONCURRENT_RUNS} runs in flight: p50 ${ms(p50Loaded)}, p99 ${ms(sortedPercentile(loadedTransitions, 99))} (n=${loadedTransitions.length})`,
				`stage transition, one run at a time: p50 ${ms(p50Isolated)}, p99 ${ms(sortedPercentile(isolatedTransitions, 99))} (n=${isolatedTransitions.length}; target p50 < 5 ms: ${p50Isolated < 5 ? "met" : "NOT met"})`
			]
		};
	} finally {
		await started?.stop();
		fs.rmSync(env.DATA_DIR, { recursive: true, force: true });
	}
}

if (require.main === module) runAsScript(runPipelineBench);
