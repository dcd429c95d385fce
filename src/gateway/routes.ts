/**
 * The REST surface as data: path, action, who may call it, and what a success answers.
 * The gateway builds moleculer-web aliases and its access checks from this one table.
 */
import type { AccessRule } from "../domain/access";

export interface RestRoute {
	method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
	/** Under /api/v1. */
	path: string;
	action: string;
	/** `public`: no credentials at all (the action checks its own, e.g. an API key in the body). */
	access: AccessRule | "public";
	/** Also accept `X-API-Key` instead of a token. */
	apiKey?: boolean;
	/** HTTP status of a success (200 when unset). */
	status?: number;
	/** `Location` of what a 201/202 created, from the response body. */
	location?: (created: Record<string, string>) => string;
	/** Mutating calls are audited unless this is false (high-rate liveness and progress reports). */
	audit?: boolean;
}

const read: AccessRule = { level: "read" };
const operate: AccessRule = { level: "operate" };
const operateOrAgent: AccessRule = { level: "operate", agent: true };

export const REST_ROUTES: RestRoute[] = [
	{ method: "POST", path: "/auth/token", action: "auth.token", access: "public" },

	{ method: "POST", path: "/agents/register", action: "agents.register", access: operate, apiKey: true, status: 201, location: a => `/api/v1/agents/${a.id}` },
	{ method: "GET", path: "/agents", action: "agents.list", access: read },
	{ method: "GET", path: "/agents/:id", action: "agents.get", access: read },
	{ method: "DELETE", path: "/agents/:id", action: "agents.remove", access: operate },
	{ method: "POST", path: "/agents/:id/heartbeat", action: "agents.heartbeat", access: operateOrAgent, audit: false },
	{ method: "POST", path: "/agents/:id/drain", action: "agents.drain", access: operate },

	{ method: "POST", path: "/tasks", action: "tasks.create", access: operate, status: 201, location: t => `/api/v1/tasks/${t.task_id}` },
	{ method: "GET", path: "/tasks", action: "tasks.list", access: read },
	{ method: "GET", path: "/tasks/:id", action: "tasks.get", access: read },
	{ method: "POST", path: "/tasks/:id/cancel", action: "tasks.cancel", access: operate },
	{ method: "POST", path: "/tasks/:id/progress", action: "tasks.progress", access: operateOrAgent, audit: false },
	{ method: "POST", path: "/tasks/:id/complete", action: "tasks.complete", access: operateOrAgent },
	{ method: "POST", path: "/tasks/:id/fail", action: "tasks.fail", access: operateOrAgent },

	{ method: "POST", path: "/pipelines", action: "pipelines.create", access: operate, status: 201, location: p => `/api/v1/pipelines/${p.pipeline_id}` },
	{ method: "GET", path: "/pipelines", action: "pipelines.list", access: read },
	{ method: "GET", path: "/pipelines/:id", action: "pipelines.get", access: read },
	{ method: "POST", path: "/pipelines/:id/execute", action: "pipelines.execute", access: operate, status: 202, location: r => `/api/v1/pipelines/${r.pipeline_id}/runs/${r.run_id}` },
	{ method: "GET", path: "/pipelines/:id/runs/:run_id", action: "pipelines.getRun", access: read },
	{ method: "POST", path: "/pipelines/:id/runs/:run_id/cancel", action: "pipelines.cancelRun", access: operate },
	{ method: "POST", path: "/pipelines/:id/runs/:run_id/retry", action: "pipelines.retryRun", access: operate, status: 202, location: r => `/api/v1/pipelines/${r.pipeline_id}/runs/${r.run_id}` },

	{ method: "GET", path: "/audit", action: "audit.list", access: { level: "admin" } }
];
