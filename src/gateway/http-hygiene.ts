/**
 * What every gateway answer carries whatever route it takes (REST, /health, /ready, /metrics, a 404,
 * an error body), and the CORS settings of the gateway and of socket.io from the configured origins.
 */
import type { ServerResponse } from "node:http";

export const RESPONSE_HEADERS: Readonly<Record<string, string>> = {
	// A browser must not guess another type than the one sent (a JSON error body taken for HTML).
	"X-Content-Type-Options": "nosniff",
	// Answers hold tokens, task results and audit entries: no browser or proxy cache keeps them.
	"Cache-Control": "no-store"
};

export function setResponseHeaders(res: ServerResponse): void {
	for (const [name, value] of Object.entries(RESPONSE_HEADERS)) res.setHeader(name, value);
}

const CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Quota-Limit", "X-Quota-Remaining"];

/** moleculer-web's `cors` setting; undefined when no origin is allowed, so that no CORS header is sent. */
export function gatewayCors(origins: string[] | "*"): Record<string, unknown> | undefined {
	if (origins === "*") return { origin: "*", methods: CORS_METHODS, exposedHeaders: CORS_EXPOSED_HEADERS };
	return origins.length ? { origin: origins, credentials: true } : undefined;
}

/** socket.io's `cors` option; undefined when no origin is allowed (its handshake then sends no CORS header either). */
export function socketIoCors(origins: string[] | "*"): { origin: string | string[]; credentials?: boolean } | undefined {
	if (origins === "*") return { origin: "*" };
	return origins.length ? { origin: origins, credentials: true } : undefined;
}
