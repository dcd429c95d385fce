/**
 * Pipeline run figures from `pipeline.progress` events (sent on every change of a run, most of
 * them progress within `running`). Counts are of what this node saw since it started: a node that
 * starts while runs are in flight counts each of them as started when it first hears of it.
 * Stage durations come from the stage tasks instead (see `TaskFigures`): runs carry no stage times.
 */
import type { PipelineRun, RunStatus } from "../../types";
import { MCP_METRIC } from "./definitions";
import type { MetricUpdate } from "./updates";

export type RunView = Pick<PipelineRun, "run_id" | "status">;

export class PipelineFigures {
	/** Last status of each running run seen. */
	private readonly lastStatus = new Map<string, RunStatus>();
	private completed = 0;
	private failed = 0;

	onPipelineProgress(run: RunView): MetricUpdate[] {
		if (this.lastStatus.get(run.run_id) === run.status) return [];
		if (run.status === "running") this.lastStatus.set(run.run_id, run.status);
		else this.lastStatus.delete(run.run_id);

		const updates: MetricUpdate[] = [{ op: "increment", name: MCP_METRIC.pipelineRunsTotal, labels: { status: run.status } }];
		if (run.status === "completed") this.completed++;
		else if (run.status === "failed") this.failed++;
		else return updates;
		updates.push({ op: "set", name: MCP_METRIC.pipelineSuccessRatio, value: this.successRatio()! });
		return updates;
	}

	/** Cancelled runs are an operator's choice, not a failure: they are left out. Null before any run ended. */
	successRatio(): number | null {
		const ended = this.completed + this.failed;
		return ended ? this.completed / ended : null;
	}
}
