/**
 * Registers the MCP metrics on every broker with metrics enabled (see `src/metrics/definitions.ts`
 * for why not only in the metrics service), and counts agent heartbeats.
 *
 * Heartbeats cannot be derived from events: `agent.updated` is announced only when a heartbeat
 * changes the agent's status or load. Every heartbeat, HTTP or in-cluster, is a call of
 * `agents.heartbeat`, so it is counted where that action runs: the figure is per agents-service
 * node, and a node without the agents service shows none.
 */
import type { Context, MetricRegistry, Middleware, ServiceBroker } from "moleculer";
import { MCP_METRIC, registerMcpMetrics } from "../metrics/definitions";

const HEARTBEAT_ACTION = "agents.heartbeat";

type ActionHandler = (ctx: Context) => Promise<unknown>;

export function mcpMetricsMiddleware(): Middleware {
	let registry: MetricRegistry | null = null;
	return {
		name: "McpMetrics",

		created(broker: ServiceBroker) {
			if (!broker.isMetricsEnabled()) return;
			registry = broker.metrics;
			registerMcpMetrics(registry);
		},

		localAction(next: ActionHandler, action: { name: string }) {
			if (action.name !== HEARTBEAT_ACTION) return next;
			return async function countedHeartbeat(ctx: Context) {
				const result = await next(ctx);
				registry?.increment(MCP_METRIC.agentHeartbeatsTotal);
				return result;
			};
		}
	} as unknown as Middleware;
}
