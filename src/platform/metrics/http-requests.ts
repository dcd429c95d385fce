/**
 * HTTP figures and the access log line of the gateway, taken when a response ends, so that every
 * answer counts: routed calls, 404s, authentication failures, `/health`, `/metrics`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger, MetricRegistry } from "moleculer";
import { MCP_METRIC } from "./definitions";

/** What moleculer-web hangs on the request by the time it is answered (all optional: a 404 has no alias). */
interface GatewayRequestFields {
	$startTime?: [number, number];
	$alias?: { fullPath?: string | null };
	$ctx?: { requestID?: string | null; meta?: { user?: { sub?: string } | null } };
	originalUrl?: string;
}

export interface AccessLogFields {
	method: string;
	path: string;
	route: string;
	status: number;
	duration_ms: number;
	request_id: string | null;
	sub: string | null;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Probes and scrapes come every few seconds: logged at debug, not info. */
const OPS_ROUTES = new Set(["/health", "/ready", "/metrics"]);
/** nginx's code for a client that went away before the answer: it never got a real status. */
export const CLIENT_CLOSED_STATUS = 499;

function fields(req: IncomingMessage): GatewayRequestFields {
	return req as IncomingMessage & GatewayRequestFields;
}

/** The alias pattern (`/api/v1/tasks/:id`), never the raw path: label values must stay few. */
export function routeLabel(req: IncomingMessage): string {
	const pattern = fields(req).$alias?.fullPath;
	return pattern ? pattern.replace(/\/{2,}/g, "/") : "unmatched";
}

export function methodLabel(method: string | undefined): string {
	const upper = (method ?? "").toUpperCase();
	return KNOWN_METHODS.has(upper) ? upper : "OTHER";
}

export function isOpsRoute(route: string): boolean {
	return OPS_ROUTES.has(route);
}

/** The access log line: the path without its query string, the caller's `sub`, never a credential. */
export function accessLogFields(req: IncomingMessage, status: number, durationMs: number): AccessLogFields {
	const f = fields(req);
	const url = f.originalUrl ?? req.url ?? "";
	return {
		method: req.method ?? "",
		path: url.split("?")[0],
		route: routeLabel(req),
		status,
		duration_ms: Math.round(durationMs * 10) / 10,
		request_id: f.$ctx?.requestID ?? null,
		sub: f.$ctx?.meta?.user?.sub ?? null
	};
}

function elapsedMs(start: [number, number]): number {
	const [s, ns] = process.hrtime(start);
	return s * 1000 + ns / 1e6;
}

/**
 * Counts and logs `req` when its response ends. Call it when the request arrives (moleculer-web's
 * `rootCallOptions` hook does: it runs for every request, before routing). `registry` is null when
 * metrics are off: the access log is written all the same.
 */
export function watchHttpRequest(registry: MetricRegistry | null, logger: Logger, req: IncomingMessage, res: ServerResponse): void {
	const start = fields(req).$startTime ?? process.hrtime();
	let done = false;
	const finish = () => {
		if (done) return;
		done = true;
		const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS;
		const ms = elapsedMs(start);
		const line = accessLogFields(req, status, ms);
		const method = methodLabel(req.method);
		if (registry) {
			registry.increment(MCP_METRIC.httpRequestsTotal, { route: line.route, method, status: String(status) });
			// Kept in milliseconds, exposed in seconds (see definitions.ts).
			registry.observe(MCP_METRIC.httpRequestDurationSeconds, ms, { route: line.route, method });
		}
		if (isOpsRoute(line.route) && status < 500) logger.debug(line, "http request");
		else logger.info(line, "http request");
	};
	res.once("finish", finish);
	res.once("close", finish);
}
