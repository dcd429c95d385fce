/**
 * Broker options from the typed config: used by `moleculer.config.ts` (moleculer-runner), by the
 * agent and REPL entry points and by tests, so every node is configured the same way.
 */
import path from "node:path";
import type { BrokerOptions, Errors, Middleware } from "moleculer";
import { pino, type DestinationStream } from "pino";
import { certificateReloadMiddleware } from "./certificate-reload";
import type { EnvConfig } from "./config";
import { redisOptions, ResilientRedisCacher } from "./redis-cacher";
import { brokerErrorHandler, errorTrackingMiddleware } from "./error-tracking";
import { mcpMetricsMiddleware } from "./middlewares/mcp-metrics";
import { internalMiddlewares } from "./middlewares/moleculer-metrics";
import { requestContextMiddleware, requestLogFields } from "./middlewares/request-context";
import { transporterOptions } from "./transporter";
import { trustMiddleware } from "./trust";
import { payloadGuardMiddleware } from "./middlewares/payload-guard";

// ---------- logging: redaction, request ids, optional rotated files ----------
/** Field names that hold credentials: headers, bodies, tokens and our own config. */
export const REDACTED_KEYS = ["authorization", "token", "callback_token", "api_key", "apiKey", "jwtSecret", "password", "x-api-key"];

/**
 * pino's paths for them at the top of a line's object and one or two levels down (a wildcard
 * matches exactly one level: "*.token" alone misses `{ token }` and `{ a: { b: { token } } }`).
 */
export const REDACTED_PATHS = REDACTED_KEYS.flatMap(key => {
	const segment = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
	const top = segment.startsWith(".") ? segment.slice(1) : segment;
	return [top, `*${segment}`, `*.*${segment}`];
});

/** LOG_DIR set: JSON lines to stdout as always, and to daily/size-rotated files there (pino-roll, in pino's worker thread). */
function logDestination(config: EnvConfig): DestinationStream | undefined {
	if (!config.logDir) return undefined;
	// Moleculer gives each module's child logger its level: the targets pass everything on.
	return pino.transport({
		targets: [
			{ target: "pino/file", level: "trace", options: { destination: 1 } },
			{
				target: "pino-roll",
				level: "trace",
				options: {
					file: path.join(config.logDir, "mcp-server"),
					extension: ".log",
					frequency: "daily",
					dateFormat: "yyyy-MM-dd",
					size: "100m",
					mkdir: true,
					limit: { count: 14, removeOtherLogFiles: true }
				}
			}
		]
	});
}

// ---------- metrics ----------
/** Moleculer's registry, no reporter: `GET /metrics` on the gateway renders it (see `src/metrics/prometheus.ts`). */
function metricsOptions(config: EnvConfig): BrokerOptions["metrics"] {
	return config.metricsEnabled ? { enabled: true, reporter: null } : false;
}

/**
 * Ours first (innermost around handlers; CertificateReload has only the started/stopped hooks: SIGHUP
 * re-reads certificates), then Moleculer's own with a cheaper "Metrics" (see
 * moleculer-metrics.ts). The guards go just outside Moleculer's "Cacher": a caller is
 * authenticated (Trust), then its payload checked, before the cache, the bulkhead or the validator
 * spend anything on it or tell it anything.
 */
function operationsMiddlewares(config: EnvConfig): Array<Middleware | string> {
	const internal = internalMiddlewares();
	const outsideCacher = internal.indexOf("Cacher") + 1;
	return [
		requestContextMiddleware(), mcpMetricsMiddleware(), errorTrackingMiddleware(), certificateReloadMiddleware(config),
		...internal.slice(0, outsideCacher), payloadGuardMiddleware(), trustMiddleware(config), ...internal.slice(outsideCacher)
	];
}

const isRetryable = (err: Error) => Boolean((err as Errors.MoleculerError).retryable);

/**
 * The typed config rides on `broker.metadata` for `appConfig(broker)`, but non-enumerable: Moleculer
 * sends metadata to every node in its INFO packets, and the config holds JWT_SECRET and API_KEY.
 */
function configCarrier(config: EnvConfig): Record<string, unknown> {
	return Object.defineProperty({}, "config", { value: config, enumerable: false, writable: true });
}

export function brokerOptions(config: EnvConfig): BrokerOptions {
	return {
		namespace: config.broker.namespace,
		nodeID: config.nodeId,
		transporter: transporterOptions(config),
		logger: {
			type: "Pino",
			options: {
				level: config.logLevel,
				pino: {
					options: { redact: { paths: REDACTED_PATHS, censor: "[redacted]" }, mixin: requestLogFields },
					destination: logDestination(config)
				}
			}
		},
		metadata: configCarrier(config),
		heartbeatInterval: config.broker.nodeHeartbeatIntervalSec,
		heartbeatTimeout: config.broker.nodeHeartbeatTimeoutSec,
		requestTimeout: config.broker.requestTimeoutMs,
		retryPolicy: {
			enabled: config.broker.retries > 0,
			retries: config.broker.retries,
			delay: config.broker.retryDelayMs,
			maxDelay: config.broker.retryDelayMs * 20,
			factor: 2,
			check: isRetryable
		},
		circuitBreaker: {
			enabled: true,
			threshold: config.broker.circuitBreakerThreshold,
			windowTime: Math.round(config.broker.circuitBreakerWindowMs / 1000),
			minRequestCount: 20,
			halfOpenTime: config.broker.circuitBreakerHalfOpenMs,
			// Only infrastructure failures open the breaker, not a client's 4xx.
			check: err => ((err as Errors.MoleculerError).code ?? 500) >= 500
		},
		bulkhead: {
			enabled: true,
			concurrency: config.broker.bulkheadConcurrency,
			maxQueueSize: config.broker.bulkheadMaxQueueSize
		},
		registry: { strategy: config.broker.strategy, preferLocal: true },
		// Without Redis there is no cache: a per-node memory cache would serve stale agent lists in a cluster.
		cacher: config.redisUrl
			? new ResilientRedisCacher({ redis: redisOptions(config.redisUrl), prefix: `${config.broker.namespace}-cache`, ttl: 30, redlock: false } as never)
			: null,
		validator: true,
		metrics: metricsOptions(config),
		tracing: false,
		middlewares: operationsMiddlewares(config),
		internalMiddlewares: false,
		// Server errors to Sentry when SENTRY_DSN is set; rethrown either way.
		errorHandler: brokerErrorHandler(config) as unknown as BrokerOptions["errorHandler"]
	};
}
