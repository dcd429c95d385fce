/**
 * Error tracking with Sentry when SENTRY_DSN is set. Without it `@sentry/node` is never loaded:
 * it is required on the first report, and only then.
 *
 * What is reported: server errors (5xx and errors without an HTTP code), from Moleculer's broker
 * `errorHandler` (every failed action or event handler on this node) and from the gateway's error
 * response as a backstop. Client errors (4xx, validation, a task an agent failed: 422) are not.
 * An error is reported once: the same object passes several handlers on its way to the client,
 * and one that came back from another node was that node's to report.
 */
import type { Errors, Middleware } from "moleculer";
import type { EnvConfig } from "./config";

type SentryModule = typeof import("@sentry/node");

export interface ErrorReportContext {
	request_id?: string | null;
	action?: string;
	event?: string;
	node_id?: string;
	method?: string;
	path?: string;
	status?: number;
}

interface Tracker {
	dsn: string;
	sentry: SentryModule;
}

/** Sentry's default integrations we keep: error shaping, context, and the process-level crash handlers. */
const KEPT_INTEGRATIONS = new Set([
	"EventFilters", "FunctionToString", "LinkedErrors", "Dedupe", "NodeSystemError", "OnUncaughtException", "OnUnhandledRejection",
	"ContextLines", "Context", "Modules"
]);

let tracker: Tracker | null = null;
const seen = new WeakSet<object>();

/** body-parser's and the validator's error types: the client's fault whatever their code says. */
const CLIENT_ERROR_TYPES = new Set(["entity.parse.failed", "entity.too.large", "VALIDATION_ERROR"]);

export function httpStatusOf(err: unknown): number {
	const e = (err ?? {}) as Partial<Errors.MoleculerError> & { status?: number; type?: string };
	if (e.name === "ValidationError" || (e.type && CLIENT_ERROR_TYPES.has(e.type))) return 400;
	if (typeof e.code === "number" && e.code >= 400 && e.code < 600) return e.code;
	return typeof e.status === "number" ? e.status : 500;
}

/** 5xx, except 503: "not ready" is a state the readiness probe reports, not a bug. */
export function isServerError(err: unknown): boolean {
	const status = httpStatusOf(err);
	return status >= 500 && status !== 503;
}

/** True once `@sentry/node` has been loaded and initialised in this process. */
export function errorTrackingActive(): boolean {
	return tracker !== null;
}

function sentryFor(config: EnvConfig): SentryModule | null {
	if (!config.sentryDsn) return null;
	if (tracker) return tracker.sentry;
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const sentry = require("@sentry/node") as SentryModule;
	// One client per process: brokers of one process share it (the first DSN wins).
	sentry.init({
		dsn: config.sentryDsn,
		environment: config.nodeEnv,
		serverName: config.nodeId,
		// Headers, cookies, bodies and query strings may hold tokens: none of them leave.
		dataCollection: { userInfo: false, cookies: false, httpHeaders: false, httpBodies: [], urlQueryParams: false },
		// Error tracking only: no tracing, no module hooks rewriting our dependencies at load time,
		// none of the integrations that patch http, fetch, console or child processes.
		tracesSampleRate: 0,
		enableRuntimeChannelInjection: false,
		integrations: defaults => defaults.filter(integration => KEPT_INTEGRATIONS.has(integration.name)),
		beforeSend(event) {
			// Belt and braces for the above, whatever an integration attached: only the method and path.
			if (event.request) event.request = { method: event.request.method, url: event.request.url?.split("?")[0] };
			return event;
		}
	});
	tracker = { dsn: config.sentryDsn, sentry };
	return sentry;
}

/** Reports `err` if it is a server error not reported yet. Never throws. */
export function reportServerError(config: EnvConfig, err: unknown, context: ErrorReportContext = {}): void {
	if (!config.sentryDsn || !(err instanceof Error) || seen.has(err)) return;
	seen.add(err);
	if (!isServerError(err)) return;
	try {
		const sentry = sentryFor(config);
		if (!sentry) return;
		const tags: Record<string, string> = {};
		for (const [key, value] of Object.entries(context)) if (value !== undefined && value !== null) tags[key] = String(value);
		sentry.captureException(err, { tags });
	} catch {
		// Error tracking must never turn one failure into two.
	}
}

/** Marks `err` as handled elsewhere (it came from another node, which reports its own errors). */
export function markErrorReported(err: unknown): void {
	if (err instanceof Error) seen.add(err);
}

/** Sends what is queued; resolves false when `timeoutMs` passed first or nothing was set up. */
export async function flushErrorReports(timeoutMs = 2000): Promise<boolean> {
	return tracker ? tracker.sentry.flush(timeoutMs) : false;
}

interface HandlerInfo {
	ctx?: { requestID?: string | null; endpoint?: { local?: boolean } | null };
	action?: { name?: string };
	event?: { name?: string };
	actionName?: string;
}

/**
 * Moleculer's broker `errorHandler`: reports, then rethrows so callers see the error as before.
 * An error from a remote action reaches this node's handler too, rebuilt from the wire: that one
 * is skipped (the node that ran the action reported it).
 */
export function brokerErrorHandler(config: EnvConfig) {
	return function errorHandler(this: { nodeID: string }, err: Error, info: HandlerInfo): never {
		const remote = info.ctx?.endpoint?.local === false;
		if (remote) markErrorReported(err);
		else
			reportServerError(config, err, {
				request_id: info.ctx?.requestID,
				action: info.action?.name ?? info.actionName,
				event: info.event?.name,
				node_id: this.nodeID
			});
		throw err;
	};
}

/** Flushes queued reports when the broker stops (moleculer-runner exits right after). */
export function errorTrackingMiddleware(): Middleware {
	return {
		name: "ErrorTracking",
		async stopped() {
			await flushErrorReports(2000);
		}
	};
}
