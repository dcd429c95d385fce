/**
 * What metrics cost: end-to-end task throughput on an embedded node (NeDB, no transporter, an
 * in-process no-op agent, as in task-throughput.ts) with METRICS_ENABLED=false and =true, the
 * metrics service loaded both times (it subscribes to nothing when metrics are off). Moleculer's
 * per-call metrics (the lean set, see src/platform/middlewares/moleculer-metrics.ts) and our event-derived
 * figures are both in the "on" figure.
 *
 * Rounds alternate off/on on fresh nodes (which one goes first alternates too), and each "on"
 * round is compared with the "off" round next to it (the median of those pairs is the figure): on a
 * shared 2-core machine single runs vary by tens of percent. CPU time per task is reported too, as
 * it is less sensitive to other load. BENCH_CONTROL=1 runs "off" in both columns to show the noise
 * floor. The budget is 10% of throughput.
 */
import type { ServiceSchema } from "moleculer";
import { agentMixin } from "../mixins/agent.mixin";
import { benchEnv, fmt, startNode, type BenchResult, runAsScript } from "./bench-kit";
import { measureTasks, waitForAgent, type ThroughputFigures } from "./task-throughput";

const TASKS = Number(process.env.BENCH_TASKS ?? 5000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** BENCH_CONTROL=1: metrics off in both columns, to see the noise floor of this machine. */
const CONTROL = process.env.BENCH_CONTROL === "1";
const BUDGET_PCT = 10;
const AGENT_NAME = "metrics-bench-noop";

const noopAgent: Partial<ServiceSchema> = {
	name: "noop-agent",
	mixins: [agentMixin({ name: AGENT_NAME, capabilities: ["noop"], concurrency: 256 })],
	methods: { handleTask: async () => ({ ok: true }) }
};

interface RoundFigures extends ThroughputFigures {
	/** Process CPU time (user + system) per task, microseconds: steadier than wall time on a busy machine. */
	cpuMicrosPerTask: number;
}

async function measure(metricsEnabled: boolean): Promise<RoundFigures> {
	const broker = await startNode(benchEnv({ METRICS_ENABLED: String(metricsEnabled) }), ["agents", "tasks", "metrics"], [noopAgent]);
	try {
		await waitForAgent(broker, AGENT_NAME);
		await measureTasks(broker, Math.min(500, TASKS), WINDOW); // warm-up
		const cpuBefore = process.cpuUsage();
		const figures = await measureTasks(broker, TASKS, WINDOW);
		const cpu = process.cpuUsage(cpuBefore);
		return { ...figures, cpuMicrosPerTask: (cpu.user + cpu.system) / TASKS };
	} finally {
		await broker.stop();
	}
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function runMetricsOverheadBench(): Promise<BenchResult> {
	const off: RoundFigures[] = [];
	const on: RoundFigures[] = [];
	for (let round = 0; round < ROUNDS; round++) {
		// Alternate which goes first, so neither always runs on the heap and JIT state the other left.
		if (round % 2 === 0) {
			off.push(await measure(false));
			on.push(await measure(!CONTROL));
		} else {
			on.push(await measure(!CONTROL));
			off.push(await measure(false));
		}
	}
	const summary = (label: string, runs: RoundFigures[]) =>
		`${label}: median ${fmt(median(runs.map(r => r.tasksPerSec)))} tasks/s, ${fmt(median(runs.map(r => r.cpuMicrosPerTask)))} µs CPU/task, ` +
		`p50 ${fmt(median(runs.map(r => r.p50)), 1)} ms (rounds: ${runs.map(r => fmt(r.tasksPerSec)).join(", ")} tasks/s)`;
	// Each "on" round against the "off" round next to it: both saw about the same machine load.
	const throughputLossPct = median(off.map((o, i) => (100 * (o.tasksPerSec - on[i].tasksPerSec)) / o.tasksPerSec));
	const cpuCostPct = median(off.map((o, i) => (100 * (on[i].cpuMicrosPerTask - o.cpuMicrosPerTask)) / o.cpuMicrosPerTask));
	const verdict = throughputLossPct <= BUDGET_PCT ? "within" : "OVER";
	return {
		name: "Metrics overhead",
		lines: [
			`embedded node, ${TASKS} tasks per round, ${WINDOW} in flight, ${ROUNDS} rounds each, alternating${CONTROL ? " (CONTROL: metrics off in both)" : ""}`,
			summary("METRICS_ENABLED=false", off),
			summary(CONTROL ? "METRICS_ENABLED=false (control)" : "METRICS_ENABLED=true ", on),
			`overhead (median of paired rounds): ${fmt(throughputLossPct, 1)}% throughput, ${fmt(cpuCostPct, 1)}% CPU per task (budget ${BUDGET_PCT}% of throughput: ${verdict})`
		]
	};
}

if (require.main === module) runAsScript(runMetricsOverheadBench);
