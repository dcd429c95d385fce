/**
 * The REST surface as data: path, action, and what a success answers. The gateway builds
 * moleculer-web aliases from this one table; who may call an action is the action's own
 * `access` (checked where it runs, see src/platform/trust.ts).
 */
export interface RestRoute {
	method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
	/** Under /api/v1. */
	path: string;
	action: string;
	/** Also accept `X-API-Key` instead of a token. */
	apiKey?: boolean;
	/** HTTP status of a success (200 when unset). */
	status?: number;
	/** `Location` of what a 201/202 created, from the response body. */
	location?: (created: Record<string, string>) => string;
	/** Mutating calls are audited unless this is false (high-rate liveness and progress reports). */
	audit?: boolean;
}

export const REST_ROUTES: RestRoute[] = [
	{ method: "POST", path: "/auth/token", action: "auth.token" },

	{ method: "POST", path: "/agents/register", action: "agents.register", apiKey: true, status: 201, location: a => `/api/v1/agents/${a.id}` },
	{ method: "GET", path: "/agents", action: "agents.list" },
	{ method: "GET", path: "/agents/:id", action: "agents.get" },
	{ method: "DELETE", path: "/agents/:id", action: "agents.remove" },
	{ method: "POST", path: "/agents/:id/heartbeat", action: "agents.heartbeat", audit: false },
	{ method: "POST", path: "/agents/:id/drain", action: "agents.drain" },

	{ method: "POST", path: "/tasks", action: "tasks.create", status: 201, location: t => `/api/v1/tasks/${t.task_id}` },
	{ method: "GET", path: "/tasks", action: "tasks.list" },
	{ method: "POST", path: "/tasks/bulk", action: "tasks.bulk" },
	{ method: "GET", path: "/tasks/:id", action: "tasks.get" },
	{ method: "GET", path: "/tasks/:id/explain", action: "tasks.explain" },
	{ method: "POST", path: "/tasks/:id/retry", action: "tasks.retry" },
	{ method: "POST", path: "/tasks/:id/cancel", action: "tasks.cancel" },
	{ method: "POST", path: "/tasks/:id/progress", action: "tasks.progress", audit: false },
	{ method: "POST", path: "/tasks/:id/complete", action: "tasks.complete" },
	{ method: "POST", path: "/tasks/:id/fail", action: "tasks.fail" },

	{ method: "POST", path: "/pipelines", action: "pipelines.create", status: 201, location: p => `/api/v1/pipelines/${p.pipeline_id}` },
	{ method: "GET", path: "/pipelines", action: "pipelines.list" },
	{ method: "GET", path: "/pipelines/:id", action: "pipelines.get" },
	{ method: "DELETE", path: "/pipelines/:id", action: "pipelines.remove" },
	{ method: "POST", path: "/pipelines/:id/execute", action: "pipelines.execute", status: 202, location: r => `/api/v1/pipelines/${r.pipeline_id}/runs/${r.run_id}` },
	{ method: "GET", path: "/pipelines/:id/runs/:run_id", action: "pipelines.getRun" },
	{ method: "POST", path: "/pipelines/:id/runs/:run_id/cancel", action: "pipelines.cancelRun" },
	{ method: "POST", path: "/pipelines/:id/runs/:run_id/retry", action: "pipelines.retryRun", status: 202, location: r => `/api/v1/pipelines/${r.pipeline_id}/runs/${r.run_id}` },

	{ method: "GET", path: "/audit", action: "audit.list" },

	{ method: "GET", path: "/overview", action: "metrics.overview" }
];
