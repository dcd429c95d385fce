/**
 * Our own Prometheus figures, registered in Moleculer's metric registry next to its built-in ones.
 *
 * They are registered on every node with metrics enabled (by the operations middleware, at broker
 * creation), not only where `metrics.service` runs: the gateway counts HTTP requests and the
 * realtime service sets `mcp_ws_connections` on nodes that may not load the metrics service, and
 * Moleculer's registry throws when a value is set on a name nobody registered.
 *
 * Histograms are named and exposed in seconds but kept in milliseconds: Moleculer's histogram
 * indexes its buckets by their bounds, and a fractional bound costs a number-to-string conversion on
 * every observation (2.5× slower). `applyMetricUpdates` and `renderPrometheus` convert.
 */
import type { MetricRegistry } from "moleculer";

export const MCP_METRIC = {
	tasksTotal: "mcp_tasks_total",
	tasksByStatus: "mcp_tasks_by_status",
	taskQueueDepth: "mcp_task_queue_depth",
	taskExecutionSeconds: "mcp_task_execution_seconds",
	taskWaitSeconds: "mcp_task_wait_seconds",
	taskRetriesTotal: "mcp_task_retries_total",
	errorsTotal: "mcp_errors_total",
	pipelineRunsTotal: "mcp_pipeline_runs_total",
	pipelineStageSeconds: "mcp_pipeline_stage_seconds",
	pipelineSuccessRatio: "mcp_pipeline_success_ratio",
	agents: "mcp_agents",
	agentHeartbeatsTotal: "mcp_agent_heartbeats_total",
	httpRequestsTotal: "mcp_http_requests_total",
	httpRequestDurationSeconds: "mcp_http_request_duration_seconds",
	wsConnections: "mcp_ws_connections"
} as const;

export type McpMetricName = (typeof MCP_METRIC)[keyof typeof MCP_METRIC];

export interface McpMetricDefinition {
	name: McpMetricName;
	type: "counter" | "gauge" | "histogram";
	description: string;
	labelNames?: string[];
	/** Histogram upper bounds in seconds (whole milliseconds each). */
	buckets?: number[];
}

/** Task attempts run from milliseconds (no-op agents) to the one-hour default timeout. */
const TASK_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** A stage is one task including its queue wait and retries. */
const STAGE_SECONDS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600];
const HTTP_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const MCP_METRICS: readonly McpMetricDefinition[] = [
	{ name: MCP_METRIC.tasksTotal, type: "counter", description: "Task status changes, by the status entered and the task type (a stage type or other)", labelNames: ["status", "type"] },
	{ name: MCP_METRIC.tasksByStatus, type: "gauge", description: "Tasks in the store, by status", labelNames: ["status"] },
	{ name: MCP_METRIC.taskQueueDepth, type: "gauge", description: "Tasks waiting for an agent (pending + retrying)" },
	{
		name: MCP_METRIC.taskExecutionSeconds,
		type: "histogram",
		description: "Duration of a task's last attempt (started_at to finished_at), by final status and type (a stage type or other)",
		labelNames: ["status", "type"],
		buckets: TASK_SECONDS
	},
	{
		name: MCP_METRIC.taskWaitSeconds,
		type: "histogram",
		description: "Queue wait before a task's first attempt (created_at to started_at), by priority",
		labelNames: ["priority"],
		buckets: TASK_SECONDS
	},
	{ name: MCP_METRIC.taskRetriesTotal, type: "counter", description: "Failed task attempts that will be retried, by task type (a stage type or other)", labelNames: ["type"] },
	{ name: MCP_METRIC.errorsTotal, type: "counter", description: "Errors announced on mcp.error, by error code", labelNames: ["code"] },
	{ name: MCP_METRIC.pipelineRunsTotal, type: "counter", description: "Pipeline run status changes, by the status entered", labelNames: ["status"] },
	{
		name: MCP_METRIC.pipelineStageSeconds,
		type: "histogram",
		description: "Duration of a pipeline stage (its task's created_at to finished_at), by stage type (or other) and status",
		labelNames: ["type", "status"],
		buckets: STAGE_SECONDS
	},
	{ name: MCP_METRIC.pipelineSuccessRatio, type: "gauge", description: "Completed / (completed + failed) pipeline runs seen by this node since it started" },
	{ name: MCP_METRIC.agents, type: "gauge", description: "Registered agents, by status", labelNames: ["status"] },
	{ name: MCP_METRIC.agentHeartbeatsTotal, type: "counter", description: "Agent heartbeats accepted by the agents service on this node" },
	{
		name: MCP_METRIC.httpRequestsTotal,
		type: "counter",
		description: "HTTP requests answered by this gateway, by route pattern, method and status",
		labelNames: ["route", "method", "status"]
	},
	{
		name: MCP_METRIC.httpRequestDurationSeconds,
		type: "histogram",
		description: "HTTP request duration at this gateway, by route pattern and method",
		labelNames: ["route", "method"],
		buckets: HTTP_SECONDS
	},
	{ name: MCP_METRIC.wsConnections, type: "gauge", description: "Open real-time connections (socket.io and /ws) on this gateway" }
];

/** The histograms kept in milliseconds and exposed in seconds (all of ours). */
export const MILLISECOND_HISTOGRAMS: ReadonlySet<string> = new Set(MCP_METRICS.filter(def => def.type === "histogram").map(def => def.name));

/** Registers every MCP metric not registered yet (several brokers may share a process; each has its own registry). */
export function registerMcpMetrics(registry: MetricRegistry): void {
	if (!registry.isEnabled()) return;
	for (const def of MCP_METRICS) {
		if (registry.hasMetric(def.name)) continue;
		const buckets = def.buckets?.map(seconds => Math.round(seconds * 1000));
		registry.register({
			...def,
			labelNames: def.labelNames ? [...def.labelNames] : [],
			...(buckets ? { buckets, unit: "millisecond" } : {})
		} as Parameters<MetricRegistry["register"]>[0]);
	}
}
