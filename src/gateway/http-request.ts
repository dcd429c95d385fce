/**
 * What the gateway knows about one HTTP request, outside moleculer-web's own fields: its types,
 * where it came from, its path for logs and audit (never the query string, which may hold a
 * secret), and the audit record of a mutating call.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import type { QuotaView } from "../domain/quotas";
import type { AuditEntry, Principal } from "../types";
import type { RestRoute } from "./routes";

export type Req = IncomingMessage & {
	$ctx?: Context<unknown, GatewayMeta>;
	/** moleculer-web copies alias object fields onto the alias: ours carry their `RestRoute`. */
	$alias?: { restRoute?: RestRoute };
	$params?: Record<string, unknown>;
	$route?: RestRoute;
	/** Counted against the anonymous rate limit before routing. */
	$counted?: boolean;
	originalUrl?: string;
};
export type Res = ServerResponse;

export interface GatewayMeta {
	user?: Principal | null;
	/** The API key the caller presented (agent registration), passed on for the action to verify. */
	apiKey?: string;
	/** The bearer token the caller presented, passed on for the action to verify. */
	token?: string;
	idempotencyKey?: string;
	/** Set by an admitted submission (src/runtime/quotas.ts): its X-Quota-* headers. */
	quota?: QuotaView;
	clientIp?: string;
	$statusCode?: number;
	$location?: string;
	$responseType?: string;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function clientIp(req: Req): string {
	return req.socket.remoteAddress ?? "unknown";
}

/** The request's path without its query string: what audit records and log lines keep (a query may hold a secret). */
export function pathOf(req: Req): string {
	return (req.originalUrl ?? req.url ?? "").split("?")[0];
}

/** Target of an audited call: the path id, else the id of what it created. */
function auditTarget(req: Req, result: unknown): string | null {
	const params = req.$params ?? {};
	if (typeof params.run_id === "string") return params.run_id;
	if (typeof params.id === "string") return params.id;
	const r = result as Record<string, unknown> | undefined;
	for (const key of ["id", "task_id", "run_id", "pipeline_id"]) if (r && typeof r[key] === "string") return r[key] as string;
	return null;
}

/**
 * The audit record of a call answered with `status`: mutating calls of our routes, and anything an
 * authenticated caller tried; null for reads, liveness reports and anonymous probes of unknown paths.
 */
export function auditEntry(req: Req, status: number, result: unknown): Omit<AuditEntry, "id"> | null {
	const rule = req.$route;
	if (!MUTATING.has(req.method ?? "") || rule?.audit === false) return null;
	const ctx = req.$ctx;
	const user = ctx?.meta.user;
	if (!rule && !user) return null;
	return {
		timestamp: new Date().toISOString(),
		actor: user?.sub ?? (ctx?.meta.apiKey ? "api-key" : "anonymous"),
		roles: user?.roles ?? [],
		action: rule?.action ?? `${req.method} ${pathOf(req)}`,
		method: req.method ?? "",
		path: pathOf(req),
		target: auditTarget(req, result),
		result: status < 400 ? "success" : "failure",
		status,
		request_id: ctx?.requestID ?? null,
		ip: clientIp(req)
	};
}
