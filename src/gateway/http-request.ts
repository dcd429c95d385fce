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
	/** The parsed JSON body (body-parser). */
	body?: unknown;
	/** Our route of the call, set by `authenticate` (not `$route`: moleculer-web keeps its own route object there). */
	$restRoute?: RestRoute;
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

const PROBES = new Set(["/health", "/ready"]);

/** A liveness or readiness probe: a load balancer's, which no rate limit may make look dead. */
export const isProbe = (req: Req) => (req.method === "GET" || req.method === "HEAD") && PROBES.has(pathOf(req));

/**
 * moleculer-web merges the body into the params with `Object.assign`, which turns an own `__proto__`
 * key into the params' prototype: the key vanished before the payload check could refuse it, and its
 * fields were inherited (a body of only `{"__proto__":{"type":"x"}}` passed as a task of type x).
 * Put it back as the plain own key it was, for the payload check (payload-guard.ts) to refuse: 422.
 */
export function keepProtoKey(params: Record<string, unknown>, body: unknown): void {
	if (!body || typeof body !== "object" || Array.isArray(body) || !Object.hasOwn(body, "__proto__")) return;
	Object.setPrototypeOf(params, Object.prototype);
	const { value } = Object.getOwnPropertyDescriptor(body, "__proto__")!;
	Object.defineProperty(params, "__proto__", { value, enumerable: true, configurable: true, writable: true });
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
	const rule = req.$restRoute;
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
