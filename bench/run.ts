/**
 * `npm run bench`: every scenario in turn, each printing its figures beside the baseline measured
 * in the same run. `BENCH_ONLY=tasks,pipelines` picks scenarios.
 */
import type { BenchResult } from "./bench-kit";
import { runClusterScaleBench } from "./cluster-scale";
import { runMetricsOverheadBench } from "./metrics-overhead";
import { runPeerBench } from "./peer";
import { runPipelineBench } from "./pipeline-bench";
import { runReadsBench } from "./reads";
import { runRealtimeFanoutBench } from "./realtime-fanout";
import { runRetentionBench } from "./retention";
import { runTaskThroughputBench } from "./task-throughput";

const SCENARIOS: Record<string, () => Promise<BenchResult>> = {
	peer: runPeerBench,
	reads: runReadsBench,
	tasks: runTaskThroughputBench,
	pipelines: runPipelineBench,
	realtime: runRealtimeFanoutBench,
	metrics: runMetricsOverheadBench,
	cluster: runClusterScaleBench,
	retention: runRetentionBench
};

async function main() {
	const only = process.env.BENCH_ONLY?.split(",").map(s => s.trim()).filter(Boolean);
	const names = only?.length ? only : Object.keys(SCENARIOS);
	for (const name of names) {
		const scenario = SCENARIOS[name];
		if (!scenario) throw new Error(`unknown scenario '${name}' (one of ${Object.keys(SCENARIOS).join(", ")})`);
		const started = Date.now();
		const result = await scenario();
		console.log(`\n## ${result.name} (${((Date.now() - started) / 1000).toFixed(0)} s)\n${result.lines.map(l => `- ${l}`).join("\n")}`);
	}
	console.log(`\nnode ${process.version}, ${require("node:os").cpus().length} cores, load average ${require("node:os").loadavg().map((l: number) => l.toFixed(1)).join(" ")}`);
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
