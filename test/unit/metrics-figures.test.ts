/** The pure event → metric trackers behind services/metrics.service.ts. */
import { ServiceBroker } from "moleculer";
import { AgentFigures } from "../../src/platform/metrics/agent-figures";
import { MCP_METRIC, MCP_METRICS, registerMcpMetrics } from "../../src/platform/metrics/definitions";
import { PipelineFigures } from "../../src/platform/metrics/pipeline-figures";
import { inferPreviousStatus, TaskFigures, type TaskView } from "../../src/platform/metrics/task-figures";
import { applyMetricUpdates, secondsBetween, type MetricUpdate } from "../../src/platform/metrics/updates";

const T0 = "2026-01-01T00:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

function task(overrides: Partial<TaskView> = {}): TaskView {
	return {
		task_id: "t1", status: "pending", type: "analysis", priority: "high", attempt: 0, progress: 0, run_id: null,
		created_at: T0, started_at: null, updated_at: T0, finished_at: null, ...overrides
	};
}

/** The task's life as the tasks service announces it. */
const created = (o: Partial<TaskView> = {}) => task(o);
const started = (attempt: number, s: number, o: Partial<TaskView> = {}) =>
	task({ status: "running", attempt, started_at: at(s), updated_at: at(s), ...o });
const progressed = (attempt: number, s: number, progress: number, o: Partial<TaskView> = {}) =>
	task({ status: "running", attempt, progress, started_at: at(s), updated_at: at(s + 0.1), ...o });

function find(updates: MetricUpdate[], name: string, labels?: Record<string, string>) {
	return updates.filter(u => u.name === name && (!labels || Object.entries(labels).every(([k, v]) => u.labels?.[k] === v)));
}

describe("TaskFigures", () => {
	const gauge = (figures: TaskFigures, status?: string) =>
		figures.gauges().find(u => (status ? u.name === MCP_METRIC.tasksByStatus && u.labels?.status === status : u.name === MCP_METRIC.taskQueueDepth))?.value;

	test("a task's life: counters per status entered, gauges from the counts, wait and execution times", () => {
		const figures = new TaskFigures();
		expect(figures.onTaskUpdated(created())).toEqual([{ op: "increment", name: MCP_METRIC.tasksTotal, labels: { status: "pending", type: "analysis" } }]);
		expect(gauge(figures, "pending")).toBe(1);
		expect(gauge(figures)).toBe(1);

		const onStart = figures.onTaskUpdated(started(1, 2));
		expect(find(onStart, MCP_METRIC.tasksTotal, { status: "running" })).toHaveLength(1);
		expect(find(onStart, MCP_METRIC.taskWaitSeconds)).toEqual([{ op: "observe", name: MCP_METRIC.taskWaitSeconds, value: 2, labels: { priority: "high" } }]);
		expect(gauge(figures, "pending")).toBe(0);
		expect(gauge(figures, "running")).toBe(1);
		expect(gauge(figures)).toBe(0);

		// Progress reports are not transitions.
		expect(figures.onTaskUpdated(progressed(1, 2, 0.5))).toEqual([]);

		const onDone = figures.onTaskUpdated(task({ status: "completed", attempt: 1, progress: 1, started_at: at(2), finished_at: at(7), updated_at: at(7) }));
		expect(find(onDone, MCP_METRIC.tasksTotal, { status: "completed" })).toHaveLength(1);
		expect(find(onDone, MCP_METRIC.taskExecutionSeconds)).toEqual([
			{ op: "observe", name: MCP_METRIC.taskExecutionSeconds, value: 5, labels: { status: "completed", type: "analysis" } }
		]);
		expect(find(onDone, MCP_METRIC.pipelineStageSeconds)).toEqual([]);
		expect(figures.count("running")).toBe(0);
		expect(figures.count("completed")).toBe(1);
		expect(figures.tracked).toBe(0);
		// Every status is in the gauges, zeros included, and the queue depth.
		expect(figures.gauges()).toHaveLength(7);
	});

	test("a failed attempt that will be retried counts a retry; the second start is no queue wait sample", () => {
		const figures = new TaskFigures();
		figures.onTaskUpdated(created());
		figures.onTaskUpdated(started(1, 1));
		const onRetry = figures.onTaskUpdated(task({ status: "retrying", attempt: 1, started_at: at(1), updated_at: at(3) }));
		expect(find(onRetry, MCP_METRIC.taskRetriesTotal)).toEqual([{ op: "increment", name: MCP_METRIC.taskRetriesTotal, labels: { type: "analysis" } }]);
		expect(gauge(figures)).toBe(1);
		const second = figures.onTaskUpdated(started(2, 4));
		expect(find(second, MCP_METRIC.taskWaitSeconds)).toEqual([]);
		expect(figures.count("retrying")).toBe(0);
		const failed = figures.onTaskUpdated(task({ status: "failed", attempt: 2, started_at: at(4), finished_at: at(4.5), updated_at: at(4.5) }));
		expect(find(failed, MCP_METRIC.taskExecutionSeconds)[0]).toMatchObject({ value: 0.5, labels: { status: "failed", type: "analysis" } });
		expect(figures.count("failed")).toBe(1);
	});

	test("a stage task also times its stage, from creation to the end", () => {
		const figures = new TaskFigures();
		figures.onTaskUpdated(created({ run_id: "run-1", type: "transformation" }));
		figures.onTaskUpdated(started(1, 3, { run_id: "run-1", type: "transformation" }));
		const done = figures.onTaskUpdated(
			task({ run_id: "run-1", type: "transformation", status: "completed", attempt: 1, started_at: at(3), finished_at: at(10), updated_at: at(10) })
		);
		expect(find(done, MCP_METRIC.pipelineStageSeconds)).toEqual([
			{ op: "observe", name: MCP_METRIC.pipelineStageSeconds, value: 10, labels: { type: "transformation", status: "completed" } }
		]);
	});

	test("the previous status of a task first seen mid-life is inferred where the state machine allows", () => {
		expect(inferPreviousStatus(created())).toBe("none");
		expect(inferPreviousStatus(task({ status: "pending", attempt: 1, updated_at: at(9) }))).toBe("running");
		expect(inferPreviousStatus(started(1, 1))).toBe("pending");
		expect(inferPreviousStatus(started(3, 1))).toBe("retrying");
		expect(inferPreviousStatus(progressed(1, 1, 0.4))).toBe("running");
		for (const status of ["completed", "failed", "retrying"] as const) expect(inferPreviousStatus(task({ status, attempt: 1 }))).toBe("running");
		expect(inferPreviousStatus(task({ status: "cancelled" }))).toBe("pending");
		expect(inferPreviousStatus(task({ status: "cancelled", started_at: at(1) }))).toBe("unknown");

		// Tasks made before this node started: a progress report changes nothing, a completion moves running → completed.
		const figures = new TaskFigures();
		expect(figures.onTaskUpdated(progressed(1, 1, 0.3, { task_id: "old" }))).toEqual([]);
		figures.finishCount({ running: 4 });
		figures.onTaskUpdated(task({ task_id: "old", status: "completed", attempt: 1, started_at: at(1), finished_at: at(2) }));
		expect(figures.count("running")).toBe(3);
		expect(figures.count("completed")).toBe(1);
	});

	test("gauges never show a negative count, even when an inference was wrong", () => {
		const figures = new TaskFigures();
		figures.onTaskUpdated(task({ task_id: "ghost", status: "completed", attempt: 1 }));
		expect(figures.count("running")).toBe(-1);
		expect(gauge(figures, "running")).toBe(0);
	});

	test("a store count replaces the counts, keeping what changed while it was in flight", () => {
		const figures = new TaskFigures();
		figures.beginCount();
		figures.onTaskUpdated(created({ task_id: "new-1" }));
		figures.onTaskUpdated(created({ task_id: "new-2" }));
		figures.onTaskUpdated(started(1, 1, { task_id: "new-2" }));
		// The store answered before those three changes were written.
		figures.finishCount({ pending: 10, running: 2, completed: 100 });
		expect(figures.count("pending")).toBe(11);
		expect(figures.count("running")).toBe(3);
		expect(figures.count("completed")).toBe(100);
		expect(gauge(figures)).toBe(11);
		// After the count, changes apply on top of it as usual.
		figures.onTaskUpdated(created({ task_id: "new-3" }));
		expect(figures.count("pending")).toBe(12);

		figures.beginCount();
		figures.abortCount();
		figures.onTaskUpdated(created({ task_id: "new-4" }));
		expect(figures.count("pending")).toBe(13);
	});
});

describe("PipelineFigures", () => {
	test("counts the statuses runs enter and the success ratio of ended runs", () => {
		const figures = new PipelineFigures();
		const start = figures.onPipelineProgress({ run_id: "r1", status: "running" });
		expect(start).toEqual([{ op: "increment", name: MCP_METRIC.pipelineRunsTotal, labels: { status: "running" } }]);
		expect(figures.onPipelineProgress({ run_id: "r1", status: "running" })).toEqual([]);
		const done = figures.onPipelineProgress({ run_id: "r1", status: "completed" });
		expect(done).toContainEqual({ op: "set", name: MCP_METRIC.pipelineSuccessRatio, value: 1 });

		figures.onPipelineProgress({ run_id: "r2", status: "running" });
		expect(figures.onPipelineProgress({ run_id: "r2", status: "failed" })).toContainEqual({ op: "set", name: MCP_METRIC.pipelineSuccessRatio, value: 0.5 });
		figures.onPipelineProgress({ run_id: "r3", status: "running" });
		const cancelled = figures.onPipelineProgress({ run_id: "r3", status: "cancelled" });
		expect(cancelled).toEqual([{ op: "increment", name: MCP_METRIC.pipelineRunsTotal, labels: { status: "cancelled" } }]);
		expect(figures.successRatio()).toBe(0.5);

		// A failed run retried: running again, counted again.
		expect(figures.onPipelineProgress({ run_id: "r2", status: "running" })).toHaveLength(1);
	});

	test("no ratio before any run ended", () => {
		expect(new PipelineFigures().successRatio()).toBeNull();
	});
});

describe("AgentFigures", () => {
	const gauge = (figures: AgentFigures, status: string) => figures.gauges().find(u => u.labels?.status === status)?.value;

	test("agents by status from events; a deregistration removes the agent", () => {
		const figures = new AgentFigures();
		figures.onAgentUpdated({ agent: { id: "a1", status: "active" } });
		expect(figures.gauges()).toEqual([
			{ op: "set", name: MCP_METRIC.agents, labels: { status: "active" }, value: 1 },
			{ op: "set", name: MCP_METRIC.agents, labels: { status: "busy" }, value: 0 },
			{ op: "set", name: MCP_METRIC.agents, labels: { status: "unhealthy" }, value: 0 },
			{ op: "set", name: MCP_METRIC.agents, labels: { status: "offline" }, value: 0 },
			{ op: "set", name: MCP_METRIC.agents, labels: { status: "draining" }, value: 0 }
		]);
		figures.onAgentUpdated({ agent: { id: "a1", status: "busy" } });
		expect(gauge(figures, "active")).toBe(0);
		expect(gauge(figures, "busy")).toBe(1);
		figures.onAgentUpdated({ agent: { id: "a1", status: "offline" }, removed: true });
		expect(gauge(figures, "busy")).toBe(0);
		expect(gauge(figures, "offline")).toBe(0);
	});

	test("a seed from the agent list fills in agents no event told about", () => {
		const figures = new AgentFigures();
		figures.onAgentUpdated({ agent: { id: "a1", status: "draining" } });
		figures.onAgentUpdated({ agent: { id: "gone", status: "offline" }, removed: true });
		figures.seed([
			{ id: "a1", status: "active" },
			{ id: "gone", status: "active" },
			{ id: "a2", status: "unhealthy" }
		]);
		expect(figures.count("draining")).toBe(1);
		expect(figures.count("active")).toBe(0);
		expect(figures.count("unhealthy")).toBe(1);
	});
});

describe("registration and applying updates", () => {
	const brokers: ServiceBroker[] = [];
	afterAll(() => Promise.all(brokers.map(b => b.stop())));
	const broker = (metrics: boolean) => {
		const b = new ServiceBroker({ logger: false, metrics });
		brokers.push(b);
		return b;
	};

	test("every MCP metric is registered once; updates land in Moleculer's registry", () => {
		const b = broker(true);
		registerMcpMetrics(b.metrics);
		registerMcpMetrics(b.metrics);
		for (const def of MCP_METRICS) expect(b.metrics.getMetric(def.name)?.type).toBe(def.type);
		applyMetricUpdates(b.metrics, [
			{ op: "increment", name: MCP_METRIC.tasksTotal, labels: { status: "completed", type: "x" } },
			{ op: "increment", name: MCP_METRIC.tasksTotal, labels: { status: "completed", type: "x" }, value: 2 },
			{ op: "set", name: MCP_METRIC.taskQueueDepth, value: 7 },
			{ op: "observe", name: MCP_METRIC.taskExecutionSeconds, value: 0.3, labels: { status: "completed", type: "x" } }
		]);
		expect(b.metrics.getMetric(MCP_METRIC.tasksTotal)!.get({ status: "completed", type: "x" })).toMatchObject({ value: 3 });
		expect(b.metrics.getMetric(MCP_METRIC.taskQueueDepth)!.get({})).toMatchObject({ value: 7 });
		// Seconds in, milliseconds kept (integer bucket bounds are much cheaper in Moleculer's histogram).
		expect(b.metrics.getMetric(MCP_METRIC.taskExecutionSeconds)!.get({ status: "completed", type: "x" })).toMatchObject({ count: 1, sum: 300 });
	});

	test("metrics off: nothing is registered", () => {
		const b = broker(false);
		registerMcpMetrics(b.metrics);
		expect(b.metrics.hasMetric(MCP_METRIC.tasksTotal)).toBe(false);
	});

	test("secondsBetween refuses missing, unparsable and backwards intervals", () => {
		expect(secondsBetween(T0, at(1.5))).toBe(1.5);
		expect(secondsBetween(null, at(1))).toBeNull();
		expect(secondsBetween(T0, "not a date")).toBeNull();
		expect(secondsBetween(at(2), T0)).toBeNull();
	});
});
