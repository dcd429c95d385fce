/**
 * Task, pipeline and agent figures for Prometheus, derived from the cluster's broadcast events
 * (`task.updated`, `pipeline.progress`, `agent.updated`, `mcp.error`): no other service is asked to
 * count anything. The pure trackers are in `src/platform/metrics/`; this service feeds them and writes what
 * they return into Moleculer's metric registry, which the gateway renders at `GET /metrics`.
 *
 * Per node: every node has its own registry, `GET /metrics` shows the registry of the gateway node
 * that answers, and Prometheus scrapes each gateway node on its own (every sample carries `node_id`).
 * - Task, pipeline, agent and error figures (this service) are cluster-wide as seen by this node:
 *   every node's metrics service hears every event. Do not sum them over nodes; take one node's
 *   (e.g. `max by (status)`).
 * - HTTP figures are this gateway's own requests, `mcp_agent_heartbeats_total` counts heartbeats
 *   where the agents service runs, and Moleculer's `moleculer_*` / `process_*` / `os_*` figures are
 *   this node's: sum those over `node_id` for the cluster.
 * So a node with only the gateway (`SERVICES=api`) shows just HTTP and Moleculer figures: add
 * `metrics` to its SERVICES to get task, pipeline and agent figures there too.
 *
 * Counts of tasks by status are kept from events and recounted from the store every minute (the
 * first time at start), which also covers tasks made before this node started. Counters and
 * histograms are written as events come; the gauges (tasks by status, queue depth, agents by
 * status) once a second from the trackers' counts, so they lag by up to a second.
 *
 * `mcp_ws_connections` is registered with the others but is the realtime service's to set, on the
 * gateway node that holds the sockets: `broker.metrics.set("mcp_ws_connections", open)` whenever the
 * count changes (`broker.metrics.set` does nothing when metrics are off).
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { AgentFigures } from "../src/platform/metrics/agent-figures";
import { MCP_METRIC, registerMcpMetrics } from "../src/platform/metrics/definitions";
import { PipelineFigures, type RunView } from "../src/platform/metrics/pipeline-figures";
import { errorCodeLabel, TaskFigures, type TaskView } from "../src/platform/metrics/task-figures";
import { applyMetricUpdates, type MetricUpdate } from "../src/platform/metrics/updates";
import { TaskHistory } from "../src/platform/metrics/history";
import { overview, type Overview, type QueueByCapability } from "../src/platform/metrics/overview";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { allAgents } from "../src/runtime/agent-directory";
import { EVENTS, TASK_STATUSES, type AgentUpdatedEvent, type TaskStatus, type TasksRemovedEvent } from "../src/types";

const RECOUNT_INTERVAL_MS = 60_000;
const GAUGE_INTERVAL_MS = 1_000;
/** First wait after a failed count, doubling up to the interval (the tasks service may still be starting). */
const RECOUNT_RETRY_MS = 2_000;

interface MetricsThis extends Service {
	taskFigures: TaskFigures;
	history: TaskHistory;
	pipelineFigures: PipelineFigures;
	agentFigures: AgentFigures;
	agentsSeeded: boolean;
	recountTimer: NodeJS.Timeout | null;
	recountRetryMs: number;
	gaugeTimer: NodeJS.Timeout | null;
	/** Something changed since the gauges were last written. */
	gaugesStale: boolean;
	stopping: boolean;
	apply(updates: MetricUpdate[]): void;
	writeGauges(): void;
	countTasks(): Promise<void>;
	seedAgents(): Promise<void>;
	scheduleRecount(ms: number): void;
}

function actionAvailable(service: Service, action: string): boolean {
	return Boolean(service.broker.registry.getActionEndpoints(action)?.hasAvailable());
}

/** Each node's metrics service hears every event itself, even if a sender switches from broadcast to emit. */
export function metricsEventGroup(nodeID: string): string {
	return `metrics@${nodeID}`;
}

const MetricsService: TypedServiceSchema<MetricsThis> & { merged(this: MetricsThis, schema: ServiceSchema): void } = {
	name: "metrics",

	merged(this: MetricsThis, schema: ServiceSchema) {
		// Metrics off: no subscriptions at all, so the events cost this node nothing.
		if (!this.broker.isMetricsEnabled()) {
			schema.events = {};
			return;
		}
		const group = metricsEventGroup(this.broker.nodeID);
		// A fresh object: several brokers in one process (tests, benchmarks) share this schema.
		schema.events = Object.fromEntries(
			Object.entries(schema.events ?? {}).map(([name, def]) => [name, typeof def === "function" ? { handler: def, group } : { ...def, group }])
		);
	},

	actions: {
		/** The panel's Overview: counts now (from the stores), capacity by capability, and the last quarter hour of flow. */
		overview: {
			access: { level: "read" },
			async handler(this: MetricsThis): Promise<Overview> {
				const [totals, agents, queue] = await Promise.all([
					Promise.all(TASK_STATUSES.map(status => this.broker.call<{ total: number }, object>("tasks.list", { status, limit: 1 }))),
					allAgents(this.broker),
					this.broker.call<QueueByCapability>("tasks.queue")
				]);
				const byStatus = Object.fromEntries(TASK_STATUSES.map((status, i) => [status, totals[i].total])) as Record<TaskStatus, number>;
				return overview(byStatus, agents, queue, this.pipelineFigures.successRatio(), this.history.points());
			}
		}
	},

	events: {
		[EVENTS.taskUpdated](this: MetricsThis, ctx: Context<{ task?: TaskView }>) {
			const task = ctx.params?.task;
			if (!task?.task_id || !task.status) return;
			const updates = this.taskFigures.onTaskUpdated(task);
			if (updates.length) {
				this.gaugesStale = true;
				if (task.status === "completed" || task.status === "failed") this.history.ended(task.status);
			}
			this.apply(updates);
		},
		/** The retention removed finished tasks: fewer stored by status, at once rather than at the next recount. */
		[EVENTS.tasksRemoved](this: MetricsThis, ctx: Context<Partial<TasksRemovedEvent>>) {
			const removed = ctx.params?.removed;
			if (!removed || typeof removed !== "object") return;
			this.taskFigures.onRemoved(removed);
			this.gaugesStale = true;
		},
		[EVENTS.pipelineProgress](this: MetricsThis, ctx: Context<{ run?: RunView }>) {
			const run = ctx.params?.run;
			if (run?.run_id && run.status) this.apply(this.pipelineFigures.onPipelineProgress(run));
		},
		[EVENTS.agentUpdated](this: MetricsThis, ctx: Context<AgentUpdatedEvent>) {
			if (!ctx.params?.agent?.id) return;
			this.agentFigures.onAgentUpdated(ctx.params);
			this.gaugesStale = true;
		},
		[EVENTS.error](this: MetricsThis, ctx: Context<{ details?: { code?: string } }>) {
			this.apply([{ op: "increment", name: MCP_METRIC.errorsTotal, labels: { code: errorCodeLabel(ctx.params?.details?.code) } }]);
		}
	},

	methods: {
		apply(this: MetricsThis, updates: MetricUpdate[]) {
			if (updates.length) applyMetricUpdates(this.broker.metrics, updates);
		},

		async countTasks(this: MetricsThis) {
			// Asking a service that is not up (yet) makes Moleculer warn once per call: ask only when it can answer.
			if (!actionAvailable(this, "tasks.list")) throw new Error("tasks service not available");
			this.taskFigures.beginCount();
			try {
				const totals = await Promise.all(
					TASK_STATUSES.map(status =>
						this.broker.call<{ total: number }, { status: TaskStatus; limit: number }>("tasks.list", { status, limit: 1 }, { timeout: 10_000, retries: 0 })
					)
				);
				this.taskFigures.finishCount(Object.fromEntries(TASK_STATUSES.map((s, i) => [s, totals[i].total])));
				this.gaugesStale = true;
			} catch (err) {
				this.taskFigures.abortCount();
				throw err;
			}
		},

		async seedAgents(this: MetricsThis) {
			if (this.agentsSeeded) return;
			if (!actionAvailable(this, "agents.list")) throw new Error("agents service not available");
			const agents = await allAgents(this.broker, { timeout: 10_000, retries: 0 });
			this.agentFigures.seed(agents);
			this.agentsSeeded = true;
			this.gaugesStale = true;
		},

		writeGauges(this: MetricsThis) {
			this.history.queueDepth(this.taskFigures.count("pending") + this.taskFigures.count("retrying"));
			if (!this.gaugesStale) return;
			this.gaugesStale = false;
			this.apply([...this.taskFigures.gauges(), ...this.agentFigures.gauges()]);
		},

		scheduleRecount(this: MetricsThis, ms: number) {
			if (this.stopping) return;
			this.recountTimer = setTimeout(() => {
				void Promise.allSettled([this.countTasks(), this.seedAgents()]).then(results => {
					const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
					if (!failure) {
						this.recountRetryMs = RECOUNT_RETRY_MS;
						return this.scheduleRecount(RECOUNT_INTERVAL_MS);
					}
					// The tasks or agents service may be starting, or not in this cluster at all: back off.
					this.logger.debug({ err: (failure.reason as Error)?.message }, "task/agent recount failed; trying again");
					this.scheduleRecount(this.recountRetryMs);
					this.recountRetryMs = Math.min(RECOUNT_INTERVAL_MS, this.recountRetryMs * 2);
				});
			}, ms);
			this.recountTimer.unref();
		}
	},

	created(this: MetricsThis) {
		this.taskFigures = new TaskFigures();
		this.history = new TaskHistory();
		this.pipelineFigures = new PipelineFigures();
		this.agentFigures = new AgentFigures();
		this.agentsSeeded = false;
		this.recountTimer = null;
		this.gaugeTimer = null;
		// Written once at start, zeros included, so every series exists from the first scrape.
		this.gaugesStale = true;
		this.recountRetryMs = RECOUNT_RETRY_MS;
		this.stopping = false;
		if (this.broker.isMetricsEnabled()) registerMcpMetrics(this.broker.metrics);
	},

	started(this: MetricsThis) {
		if (!this.broker.isMetricsEnabled()) return;
		this.scheduleRecount(0);
		this.writeGauges();
		this.gaugeTimer = setInterval(() => this.writeGauges(), GAUGE_INTERVAL_MS);
		this.gaugeTimer.unref();
	},

	stopped(this: MetricsThis) {
		this.stopping = true;
		if (this.recountTimer) clearTimeout(this.recountTimer);
		if (this.gaugeTimer) clearInterval(this.gaugeTimer);
	}
};

export default MetricsService;
