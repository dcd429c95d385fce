/**
 * Moleculer's built-in metrics at a price the task path can pay.
 *
 * Moleculer's own Metrics middleware does five registry operations per action call (total, active
 * up and down, call level, a latency histogram that also keeps a sliding window of raw values for
 * quantiles) and as many per event handler, each labelled with service, action and caller. On the
 * embedded task benchmark (bench/metrics-overhead.ts) that was about a third more CPU per task and
 * up to 30% less throughput; the budget is 10%.
 *
 * So Moleculer's internal middleware list is used as is, except "Metrics", which becomes this one:
 * its registrations and its cheap hooks (emit and broadcast counters, transit and transporter
 * packet counters) stay; per action call there is one counter increment and one latency
 * observation, labelled by action and local/remote only, with integer millisecond buckets
 * (Moleculer's histogram is several times slower with fractional bounds); event handlers are not
 * timed, and local deliveries of a broadcast are not counted again. "Bulkhead" stays but writes no
 * gauges: it set its in-flight and queue-size gauges four times per action call and per event
 * delivery, the largest share of what was left (a full queue still shows as QueueIsFullError in
 * `moleculer_request_error_total`). Everything else Moleculer measures (process, OS, circuit
 * breaker, retries, transit…) is unchanged.
 */
import Moleculer, { METRIC, type Context, type Middleware, type ServiceBroker } from "moleculer";

type ActionHandler = (ctx: Context) => Promise<unknown>;
type MiddlewareFactory = (broker: ServiceBroker) => Middleware;
const builtIn = (Moleculer as unknown as { Middlewares: Record<"Metrics" | "Bulkhead", MiddlewareFactory> }).Middlewares;

/** Milliseconds, as Moleculer's own `moleculer.request.time`. */
const REQUEST_TIME_BUCKETS_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export function leanMoleculerMetrics(broker: ServiceBroker): Middleware {
	const moleculerMetrics = builtIn.Metrics(broker);
	if (!broker.isMetricsEnabled()) return { name: "Metrics" };
	const metrics = broker.metrics;

	const timed = (type: "local" | "remote") =>
		function (next: ActionHandler, action: { name: string }): ActionHandler {
			const labels = { action: action.name, type };
			return function leanActionMetrics(ctx: Context) {
				const start = performance.now();
				metrics.increment(METRIC.MOLECULER_REQUEST_TOTAL, labels);
				return next(ctx).then(
					result => {
						metrics.observe(METRIC.MOLECULER_REQUEST_TIME, performance.now() - start, labels);
						return result;
					},
					(err: Error | undefined) => {
						metrics.observe(METRIC.MOLECULER_REQUEST_TIME, performance.now() - start, labels);
						metrics.increment(METRIC.MOLECULER_REQUEST_ERROR_TOTAL, { ...labels, errorName: err?.name ?? "Error" });
						throw err;
					}
				);
			};
		};

	return {
		...moleculerMetrics,
		name: "Metrics",
		created(this: ServiceBroker, b: ServiceBroker) {
			moleculerMetrics.created?.call(this, b);
			// The same names as Moleculer's, re-registered with the labels this middleware fills.
			metrics.register({ name: METRIC.MOLECULER_REQUEST_TOTAL, type: "counter", labelNames: ["action", "type"], unit: "request", description: "Action calls" });
			metrics.register({
				name: METRIC.MOLECULER_REQUEST_ERROR_TOTAL,
				type: "counter",
				labelNames: ["action", "type", "errorName"],
				unit: "request",
				description: "Action calls that failed"
			});
			metrics.register({
				name: METRIC.MOLECULER_REQUEST_TIME,
				type: "histogram",
				labelNames: ["action", "type"],
				unit: "millisecond",
				buckets: REQUEST_TIME_BUCKETS_MS,
				description: "Action call duration (milliseconds)"
			});
		},
		localAction: timed("local"),
		remoteAction: timed("remote"),
		localEvent: undefined,
		broadcastLocal: undefined
	} as unknown as Middleware;
}

/** Moleculer's Bulkhead, handed a view of the broker whose metric registry ignores its gauge writes. */
export function quietBulkhead(broker: ServiceBroker): Middleware {
	const silentRegistry = { set: () => null, register: () => null, isEnabled: () => false };
	const view = Object.create(broker, {
		metrics: { value: silentRegistry },
		isMetricsEnabled: { value: () => false }
	}) as ServiceBroker;
	return builtIn.Bulkhead(view);
}

const REPLACED: Record<string, MiddlewareFactory> = { Metrics: leanMoleculerMetrics, Bulkhead: quietBulkhead };

/**
 * Moleculer's internal middlewares in its own order, with the two above in place of its own
 * (for `internalMiddlewares: false`). Moleculer calls a function middleware with the broker; its
 * typings only list objects and names.
 */
export function internalMiddlewares(): Array<string | Middleware> {
	return Moleculer.INTERNAL_MIDDLEWARES.map(name => (REPLACED[name] as unknown as Middleware | undefined) ?? name);
}
