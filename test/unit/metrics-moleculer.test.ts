/**
 * The broker's middleware list and Moleculer's built-in metrics as `brokerOptions` sets them up:
 * Moleculer's own list and order, with the lean "Metrics" in its place.
 */
import { INTERNAL_MIDDLEWARES, ServiceBroker, type Context, type Service } from "moleculer";
import { brokerOptions } from "../../src/platform/broker-options";
import { MCP_METRIC } from "../../src/platform/metrics/definitions";
import { renderPrometheus, type MetricFamilySnapshot } from "../../src/platform/metrics/prometheus";
import { testConfig } from "../support/broker";

type MiddlewareList = { middlewares: { list: Array<{ name?: string }> } };
const middlewareNames = (broker: ServiceBroker) => (broker as unknown as MiddlewareList).middlewares.list.map(m => m.name);

const brokers: ServiceBroker[] = [];
afterAll(() => Promise.all(brokers.map(b => b.stop())));

function broker(env: Record<string, string> = {}, nodeID?: string) {
	const b = new ServiceBroker({ ...brokerOptions(testConfig(env)), ...(nodeID ? { nodeID } : {}) });
	brokers.push(b);
	return b;
}

test("ours first, then Moleculer's internal middlewares in Moleculer's order, the guards just outside its cache", () => {
	const GUARDS = ["PayloadGuard", "Trust"];
	for (const METRICS_ENABLED of ["true", "false"]) {
		const options = brokerOptions(testConfig({ METRICS_ENABLED }));
		const ours = options.middlewares!.filter(m => typeof m === "object" && !GUARDS.includes((m as { name?: string }).name ?? ""));
		// What Moleculer itself would build with our middlewares (Cacher drops out without a cache, in both).
		const reference = new ServiceBroker({ ...options, internalMiddlewares: true, middlewares: ours });
		brokers.push(reference);
		const names = middlewareNames(broker({ METRICS_ENABLED }));
		expect(names.filter(name => !GUARDS.includes(name ?? ""))).toEqual(middlewareNames(reference));
		// Authentication and the payload check run before the cache, the bulkhead and the validator (outer = later in the list).
		const guards = names.indexOf("PayloadGuard");
		expect(names.slice(guards, guards + 2)).toEqual(GUARDS);
		for (const inner of ["Validator", "Bulkhead"]) expect(names.indexOf(inner)).toBeLessThan(guards);
		expect(names.indexOf("ContextTracker")).toBe(guards + 2);
		expect(names.slice(0, 3)).toEqual(["RequestContext", "McpMetrics", "ErrorTracking"]);
		expect(names).toContain("Metrics");
		expect(INTERNAL_MIDDLEWARES).toContain("Metrics");
	}
});

test("action calls are counted and timed by action; event handlers are not timed; emits are counted", async () => {
	const b = broker({ METRICS_ENABLED: "true" });
	b.createService({
		name: "calc",
		actions: {
			add: (ctx: Context<{ a: number; b: number }>) => ctx.params.a + ctx.params.b,
			fail() {
				throw new Error("nope");
			}
		},
		events: { "calc.done"() {} }
	});
	await b.start();
	await b.call("calc.add", { a: 1, b: 2 });
	await b.call("calc.add", { a: 1, b: 2 });
	await expect(b.call("calc.fail")).rejects.toThrow("nope");
	await b.emit("calc.done", {});
	const text = renderPrometheus(b.metrics.list() as unknown as MetricFamilySnapshot[]);
	expect(text).toMatch(/^moleculer_request_total\{action="calc.add",type="local"\} 2$/m);
	expect(text).toMatch(/^moleculer_request_error_total\{action="calc.fail",type="local",error_name="Error"\} 1$/m);
	expect(text).toMatch(/^moleculer_request_time_count\{action="calc.add",type="local"\} 2$/m);
	expect(text).toMatch(/^moleculer_request_time_bucket\{action="calc.add",type="local",le="1"\} \d+$/m);
	expect(text).toMatch(/^moleculer_event_emit_total\{event="calc.done"\} 1$/m);
	expect(text).not.toMatch(/^moleculer_event_received_time/m);
	// Our own figures are registered on every metrics-enabled broker, services or not.
	expect(b.metrics.hasMetric(MCP_METRIC.wsConnections)).toBe(true);
});

test("across a transporter: remote calls are timed on the caller, transit figures still work", async () => {
	const env = { METRICS_ENABLED: "true", TRANSPORTER: "Fake", NAMESPACE: `lean-${process.pid}` };
	const caller = broker(env, "lean-caller");
	const callee = broker(env, "lean-callee");
	callee.createService({ name: "far", actions: { ping: () => "pong" } });
	await Promise.all([caller.start(), callee.start()]);
	await caller.waitForServices("far");
	expect(await caller.call("far.ping")).toBe("pong");
	const callerText = renderPrometheus(caller.metrics.list() as unknown as MetricFamilySnapshot[]);
	expect(callerText).toMatch(/^moleculer_request_total\{action="far.ping",type="remote"\} 1$/m);
	expect(callerText).toMatch(/^moleculer_transit_publish_total\{type="REQ"\} \d+$/m);
	const calleeText = renderPrometheus(callee.metrics.list() as unknown as MetricFamilySnapshot[]);
	expect(calleeText).toMatch(/^moleculer_request_total\{action="far.ping",type="local"\} 1$/m);
});

test("the bulkhead still limits and queues, without writing its gauges", async () => {
	const b = broker({ METRICS_ENABLED: "true" });
	let release!: () => void;
	const gate = new Promise<void>(resolve => (release = resolve));
	b.createService({
		name: "narrow",
		actions: {
			slow: {
				bulkhead: { enabled: true, concurrency: 1, maxQueueSize: 1 },
				handler: () => gate.then(() => "done")
			}
		}
	});
	await b.start();
	const first = b.call("narrow.slow");
	const queued = b.call("narrow.slow");
	await expect(b.call("narrow.slow", {}, { retries: 0 })).rejects.toMatchObject({ name: "QueueIsFullError" });
	release();
	expect(await Promise.all([first, queued])).toEqual(["done", "done"]);
	expect(b.metrics.hasMetric("moleculer.request.bulkhead.inflight")).toBe(false);
	const text = renderPrometheus(b.metrics.list() as unknown as MetricFamilySnapshot[]);
	expect(text).toMatch(/^moleculer_request_error_total\{action="narrow.slow",type="local",error_name="QueueIsFullError"\} 1$/m);
});

test("metrics off: calls work and nothing is recorded", async () => {
	const b = broker({ METRICS_ENABLED: "false" });
	const svc = b.createService({ name: "quiet", actions: { hi: () => "hi" } }) as Service;
	await b.start();
	expect(await b.call("quiet.hi")).toBe("hi");
	expect(svc.broker.metrics.list()).toEqual([]);
});
