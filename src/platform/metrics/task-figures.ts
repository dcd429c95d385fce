/**
 * Task figures from `task.updated` events. The event carries the task after the change but not its
 * status before, so this tracker remembers the last status of every live task it has seen. For a
 * task it has not seen (it was created before this node started) the previous status is inferred
 * from the state machine where that is certain enough, and the per-status counts are reconciled
 * with the store's now and then, which heals whatever inference got wrong.
 *
 * Events give counters and histograms at once; the gauges are read from the counts (`gauges()`)
 * on a short timer instead, sparing three registry writes per event on the task path.
 *
 * A client names a task's type, and every new label value is a new series in every scrape from then
 * on: the `type` label is one of the six stage types or `other`.
 */
import { isTerminal } from "../../domain/tasks/state-machine";
import { STAGE_ERROR_CODES, STAGE_TYPES } from "../../stage-contract";
import { TASK_STATUSES, type Task, type TaskStatus } from "../../types";
import { MCP_METRIC } from "./definitions";
import { secondsBetween, type MetricUpdate } from "./updates";

export type TaskView = Pick<
	Task,
	"task_id" | "status" | "type" | "priority" | "attempt" | "progress" | "run_id" | "created_at" | "started_at" | "updated_at" | "finished_at"
>;

/** "none": the event announces the task's creation; "unknown": nothing safe to assume. */
export type PreviousStatus = TaskStatus | "none" | "unknown";

/** The status a task most likely had before this event, for a task seen for the first time. */
export function inferPreviousStatus(task: TaskView): PreviousStatus {
	switch (task.status) {
		case "pending":
			// Creation is the only change that leaves both timestamps equal; otherwise a re-queue.
			return task.attempt === 0 && task.created_at === task.updated_at ? "none" : "running";
		case "running":
			// A progress report keeps the status; a start resets progress to 0.
			if (task.progress > 0) return "running";
			// A retry starts attempt 2 or later; a re-queued task may too, but less often.
			return task.attempt <= 1 ? "pending" : "retrying";
		case "completed":
		case "failed":
		case "retrying":
			// Only the end of an attempt leads here.
			return "running";
		case "cancelled":
			return task.started_at === null ? "pending" : "unknown";
		default:
			return "unknown";
	}
}

const QUEUED: readonly TaskStatus[] = ["pending", "retrying"];

const STAGE_TYPE_NAMES: ReadonlySet<string> = new Set(STAGE_TYPES);
export const OTHER_TASK_TYPE = "other";

/** The value of the task-type label: a stage type as it is, anything else `other`. */
export function taskTypeLabel(type: string): string {
	return STAGE_TYPE_NAMES.has(type) ? type : OTHER_TASK_TYPE;
}

/** Codes an error event may carry: ours, and the ones the stage contract lets workers name. */
const ERROR_CODES: ReadonlySet<string> = new Set(["EXECUTION_ERROR", "TIMEOUT", "DELIVERY_FAILED", "AGENT_LOST", ...STAGE_ERROR_CODES]);

/** The value of the error-code label: a known code as it is, anything else `other` (an agent may name any). */
export function errorCodeLabel(code: unknown): string {
	return typeof code === "string" && ERROR_CODES.has(code) ? code : OTHER_TASK_TYPE;
}

export class TaskFigures {
	/** Last status of each non-terminal task seen: bounded by the live tasks of the cluster. */
	private readonly lastStatus = new Map<string, TaskStatus>();
	private readonly counts = new Map<TaskStatus, number>(TASK_STATUSES.map(s => [s, 0]));
	/** Changes made while a store count is in flight, added on top of that count when it lands. */
	private deltasSinceCount: Map<TaskStatus, number> | null = null;

	onTaskUpdated(task: TaskView): MetricUpdate[] {
		const known = this.lastStatus.get(task.task_id);
		const previous: PreviousStatus = known ?? inferPreviousStatus(task);
		if (previous === task.status) return [];

		if (isTerminal(task.status)) this.lastStatus.delete(task.task_id);
		else this.lastStatus.set(task.task_id, task.status);

		const type = taskTypeLabel(task.type);
		const updates: MetricUpdate[] = [{ op: "increment", name: MCP_METRIC.tasksTotal, labels: { status: task.status, type } }];
		this.adjust(task.status, 1);
		if (previous !== "none" && previous !== "unknown") this.adjust(previous, -1);

		if (task.status === "retrying") updates.push({ op: "increment", name: MCP_METRIC.taskRetriesTotal, labels: { type } });
		if (task.status === "running" && task.attempt === 1) {
			const wait = secondsBetween(task.created_at, task.started_at);
			if (wait !== null) updates.push({ op: "observe", name: MCP_METRIC.taskWaitSeconds, value: wait, labels: { priority: task.priority } });
		}
		if (task.status === "completed" || task.status === "failed") {
			const execution = secondsBetween(task.started_at, task.finished_at);
			if (execution !== null)
				updates.push({ op: "observe", name: MCP_METRIC.taskExecutionSeconds, value: execution, labels: { status: task.status, type } });
			const stage = task.run_id ? secondsBetween(task.created_at, task.finished_at) : null;
			if (stage !== null)
				updates.push({ op: "observe", name: MCP_METRIC.pipelineStageSeconds, value: stage, labels: { type, status: task.status } });
		}
		return updates;
	}

	/** Finished tasks the retention removed: the counts by status drop (the counters of what happened stay). */
	onRemoved(removed: Partial<Record<TaskStatus, number>>): void {
		for (const status of TASK_STATUSES) {
			const n = removed[status];
			if (typeof n === "number" && Number.isFinite(n) && n > 0) this.adjust(status, -n);
		}
	}

	/** Call before asking the store for counts per status. */
	beginCount(): void {
		this.deltasSinceCount = new Map();
	}

	/** The store's counts (asked for after `beginCount`) replace ours, plus what changed meanwhile. */
	finishCount(stored: Partial<Record<TaskStatus, number>>): void {
		const deltas = this.deltasSinceCount ?? new Map<TaskStatus, number>();
		this.deltasSinceCount = null;
		for (const status of TASK_STATUSES) this.counts.set(status, (stored[status] ?? 0) + (deltas.get(status) ?? 0));
	}

	abortCount(): void {
		this.deltasSinceCount = null;
	}

	count(status: TaskStatus): number {
		return this.counts.get(status) ?? 0;
	}

	/** How many live tasks this tracker remembers (for tests and sanity checks). */
	get tracked(): number {
		return this.lastStatus.size;
	}

	private adjust(status: TaskStatus, by: number): void {
		this.counts.set(status, (this.counts.get(status) ?? 0) + by);
		if (this.deltasSinceCount) this.deltasSinceCount.set(status, (this.deltasSinceCount.get(status) ?? 0) + by);
	}

	/** Tasks by status and the queue depth, every status included. */
	gauges(): MetricUpdate[] {
		// A wrong inference can push a count below zero until the next store count: never show that.
		const shown = (status: TaskStatus) => Math.max(0, this.count(status));
		const updates: MetricUpdate[] = TASK_STATUSES.map(status => ({ op: "set", name: MCP_METRIC.tasksByStatus, labels: { status }, value: shown(status) }));
		updates.push({ op: "set", name: MCP_METRIC.taskQueueDepth, value: QUEUED.reduce((sum, s) => sum + shown(s), 0) });
		return updates;
	}
}
