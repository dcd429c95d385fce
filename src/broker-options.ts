/**
 * Broker options from the typed config: used by `moleculer.config.ts` (moleculer-runner), by the
 * agent and REPL entry points and by tests, so every node is configured the same way.
 */
import type { BrokerOptions, Errors } from "moleculer";
import type { AppConfig } from "./config";

/** Never in logs: credentials in headers, bodies and our own config. */
export const REDACTED_PATHS = [
	"*.authorization", "*.headers.authorization", "*.headers[\"x-api-key\"]", "*.token", "*.callback_token",
	"*.api_key", "*.jwtSecret", "*.apiKey", "*.password", "req.headers.authorization", "config.jwtSecret", "config.apiKey"
];

const isRetryable = (err: Error) => Boolean((err as Errors.MoleculerError).retryable);

export function brokerOptions(config: AppConfig): BrokerOptions {
	return {
		namespace: config.broker.namespace,
		nodeID: config.nodeId,
		// Moleculer resolves a URL string ("nats://…") to its transporter; its typings list only names.
		transporter: (config.transporter ?? null) as BrokerOptions["transporter"],
		logger: {
			type: "Pino",
			options: {
				level: config.logLevel,
				pino: { options: { redact: { paths: REDACTED_PATHS, censor: "[redacted]" } } }
			}
		},
		metadata: { config },
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
			? ({ type: "Redis", options: { redis: config.redisUrl, prefix: `${config.broker.namespace}-cache`, ttl: 30 } } as unknown as BrokerOptions["cacher"])
			: null,
		validator: true,
		metrics: false,
		tracing: false
	};
}
