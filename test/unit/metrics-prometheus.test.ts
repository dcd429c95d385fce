/** Prometheus exposition of the registry, and the gateway's request figures and access log line. */
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ServiceBroker, type Logger, type MetricRegistry } from "moleculer";
import { MCP_METRIC, MILLISECOND_HISTOGRAMS, registerMcpMetrics } from "../../src/platform/metrics/definitions";
import { accessLogFields, CLIENT_CLOSED_STATUS, methodLabel, routeLabel, watchHttpRequest } from "../../src/platform/metrics/http-requests";
import { labelValue, metricName, renderPrometheus, sampleValue, type MetricFamilySnapshot } from "../../src/platform/metrics/prometheus";

/** Every line of the text format 0.0.4: a comment, or `name{labels} value`. */
const SAMPLE_LINE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (NaN|[+-]Inf|-?[0-9.eE+-]+)$/;
const COMMENT_LINE = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;

function expectValidExposition(text: string) {
	expect(text.endsWith("\n")).toBe(true);
	for (const line of text.trimEnd().split("\n")) expect(COMMENT_LINE.test(line) || SAMPLE_LINE.test(line) ? line : `bad: ${line}`).toBe(line);
}

describe("renderPrometheus", () => {
	test("counters, gauges, info and histograms in the text format, with the node's labels on every sample", () => {
		const families: MetricFamilySnapshot[] = [
			{ type: "counter", name: "mcp_tasks_total", description: "Task changes", values: [{ labels: { status: "completed", type: 'we"ird\\type' }, value: 3 }] },
			{ type: "gauge", name: "mcp_task_queue_depth", values: [{ labels: {}, value: 0 }] },
			{ type: "gauge", name: "empty_gauge", values: [] },
			{ type: "info", name: "moleculer.node.type", values: [{ labels: {}, value: "nodejs" }] },
			{
				type: "histogram",
				name: "mcp_task_execution_seconds",
				description: "Exec",
				values: [{ labels: { status: "completed", type: "x" }, count: 3, sum: 1.75, buckets: { "0.5": 1, "1": 2, "10": 3 } }]
			},
			{ type: "histogram", name: "quantiles.only", unit: "msec", values: [{ labels: { action: "a.b" }, count: 2, sum: 8, quantiles: { "0.5": 3, "0.99": 5 } }] },
			{ type: "info", name: "os.datetime.utc", values: [{ labels: {}, value: "now" }] }
		];
		const text = renderPrometheus(families, { namespace: "mcp", node_id: "node-1" });
		expectValidExposition(text);
		expect(text).toContain("# TYPE mcp_tasks_total counter\n");
		expect(text).toContain('mcp_tasks_total{namespace="mcp",node_id="node-1",status="completed",type="we\\"ird\\\\type"} 3\n');
		expect(text).toContain('mcp_task_queue_depth{namespace="mcp",node_id="node-1"} 0\n');
		expect(text).not.toContain("empty_gauge");
		expect(text).toContain("# TYPE moleculer_node_type gauge\n");
		expect(text).toContain('moleculer_node_type{namespace="mcp",node_id="node-1",value="nodejs"} 1\n');
		expect(text).toContain("# TYPE mcp_task_execution_seconds histogram\n");
		const labels = 'namespace="mcp",node_id="node-1",status="completed",type="x"';
		expect(text).toContain(
			[
				`mcp_task_execution_seconds_bucket{${labels},le="0.5"} 1`,
				`mcp_task_execution_seconds_bucket{${labels},le="1"} 2`,
				`mcp_task_execution_seconds_bucket{${labels},le="10"} 3`,
				`mcp_task_execution_seconds_bucket{${labels},le="+Inf"} 3`,
				`mcp_task_execution_seconds_sum{${labels}} 1.75`,
				`mcp_task_execution_seconds_count{${labels}} 3`
			].join("\n")
		);
		expect(text).toContain("# HELP quantiles_only quantiles.only (msec)\n# TYPE quantiles_only summary\n");
		expect(text).toContain('quantiles_only{namespace="mcp",node_id="node-1",action="a.b",quantile="0.99"} 5\n');
		expect(text).toContain('quantiles_only_count{namespace="mcp",node_id="node-1",action="a.b"} 2\n');
		expect(text).not.toContain("datetime");
	});

	test("a real registry with Moleculer's built-in and our metrics renders as valid exposition", async () => {
		const broker = new ServiceBroker({ logger: false, metrics: { enabled: true, collectProcessMetrics: true } });
		registerMcpMetrics(broker.metrics);
		broker.createService({ name: "echo", actions: { hi: () => "hi" } });
		await broker.start();
		try {
			await broker.call("echo.hi");
			broker.metrics.increment(MCP_METRIC.httpRequestsTotal, { route: "/api/v1/tasks", method: "POST", status: "201" });
			broker.metrics.observe(MCP_METRIC.httpRequestDurationSeconds, 12, { route: "/api/v1/tasks", method: "POST" });
			const text = renderPrometheus(broker.metrics.list() as unknown as MetricFamilySnapshot[], { node_id: broker.nodeID }, { millisecondsAsSeconds: MILLISECOND_HISTOGRAMS });
			expectValidExposition(text);
			expect(text).toMatch(/^moleculer_request_total\{.*action="echo.hi".*\} 1$/m);
			expect(text).toMatch(/^moleculer_request_time_count\{.*action="echo.hi".*\} 1$/m);
			expect(text).toMatch(/^mcp_http_requests_total\{.*route="\/api\/v1\/tasks",method="POST",status="201"\} 1$/m);
			expect(text).toMatch(/^mcp_http_request_duration_seconds_bucket\{.*le="0.01"\} 0$/m);
			expect(text).toMatch(/^mcp_http_request_duration_seconds_bucket\{.*le="0.025"\} 1$/m);
			expect(text).toMatch(/^mcp_http_request_duration_seconds_sum\{.*\} 0.012$/m);
			// Moleculer's own histograms keep their unit.
			expect(text).toMatch(/^moleculer_request_time_bucket\{.*le="1"\} \d+$/m);
			expect(text).toMatch(/^process_memory_heap_size_used\{/m);
			// One TYPE line per family, or the scrape fails.
			const types = text.split("\n").filter(l => l.startsWith("# TYPE ")).map(l => l.split(" ")[2]);
			expect(new Set(types).size).toBe(types.length);
		} finally {
			await broker.stop();
		}
	});

	test("names, label values and sample values are made safe", () => {
		expect(metricName("moleculer.request.total")).toBe("moleculer_request_total");
		expect(metricName("9lives-x")).toBe("_9lives_x");
		expect(labelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
		expect(labelValue(null)).toBe("");
		expect(sampleValue(NaN)).toBe("NaN");
		expect(sampleValue(Infinity)).toBe("+Inf");
		expect(sampleValue(null)).toBe("NaN");
		expect(sampleValue(true)).toBe("1");
		expect(renderPrometheus([])).toBe("");
	});
});

type FakeRequest = IncomingMessage & Record<string, unknown>;

function fakeExchange(fields: Record<string, unknown>) {
	const req = Object.assign(new EventEmitter(), { method: "POST", url: "/tasks", headers: {} }, fields) as unknown as FakeRequest;
	const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: false }) as unknown as ServerResponse & { writableFinished: boolean };
	return { req, res };
}

function recordingLogger() {
	const lines: Array<{ level: string; fields: unknown; msg: unknown }> = [];
	const log = (level: string) => (fields: unknown, msg: unknown) => lines.push({ level, fields, msg });
	return { lines, logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") } as unknown as Logger };
}

describe("gateway request figures and access log", () => {
	test("labels: the alias pattern (never the raw path), a bounded method set", () => {
		const { req } = fakeExchange({ $alias: { fullPath: "/api/v1/tasks/:id" }, originalUrl: "/api/v1/tasks/task-123?x=1" });
		expect(routeLabel(req)).toBe("/api/v1/tasks/:id");
		expect(routeLabel(fakeExchange({ $alias: { fullPath: "//health" } }).req)).toBe("/health");
		expect(routeLabel(fakeExchange({}).req)).toBe("unmatched");
		expect(methodLabel("get")).toBe("GET");
		expect(methodLabel("BREW")).toBe("OTHER");
	});

	test("the access log line has method, path without query, status, duration, request id and caller, and no credential", () => {
		const { req } = fakeExchange({
			method: "POST",
			originalUrl: "/api/v1/tasks?token=secret-in-query",
			headers: { authorization: "Bearer secret-token" },
			$alias: { fullPath: "/api/v1/tasks" },
			$ctx: { requestID: "req-9", meta: { user: { sub: "olive", roles: ["operator"] } } }
		});
		const line = accessLogFields(req, 201, 12.345);
		expect(line).toEqual({ method: "POST", path: "/api/v1/tasks", route: "/api/v1/tasks", status: 201, duration_ms: 12.3, request_id: "req-9", sub: "olive" });
		expect(JSON.stringify(line)).not.toContain("secret");
	});

	function registry(): MetricRegistry {
		const broker = new ServiceBroker({ logger: false, metrics: true });
		registerMcpMetrics(broker.metrics);
		return broker.metrics;
	}

	test("a finished response is counted and logged once, at info; probes and scrapes at debug", () => {
		const metrics = registry();
		const { lines, logger } = recordingLogger();
		const { req, res } = fakeExchange({ $alias: { fullPath: "/api/v1/tasks" }, $startTime: process.hrtime() });
		watchHttpRequest(metrics, logger, req, res);
		res.statusCode = 201;
		res.writableFinished = true;
		res.emit("finish");
		res.emit("close");
		expect(metrics.getMetric(MCP_METRIC.httpRequestsTotal)!.get({ route: "/api/v1/tasks", method: "POST", status: "201" })).toMatchObject({ value: 1 });
		expect(metrics.getMetric(MCP_METRIC.httpRequestDurationSeconds)!.get({ route: "/api/v1/tasks", method: "POST" })).toMatchObject({ count: 1 });
		expect(lines).toEqual([{ level: "info", fields: expect.objectContaining({ status: 201, route: "/api/v1/tasks" }), msg: "http request" }]);

		const probe = fakeExchange({ method: "GET", $alias: { fullPath: "/health" } });
		watchHttpRequest(metrics, logger, probe.req, probe.res);
		probe.res.writableFinished = true;
		probe.res.emit("finish");
		expect(lines[1].level).toBe("debug");
	});

	test("a client gone before the answer counts as 499; metrics off still logs", () => {
		const metrics = registry();
		const { lines, logger } = recordingLogger();
		const { req, res } = fakeExchange({ $alias: { fullPath: "/api/v1/tasks" } });
		watchHttpRequest(metrics, logger, req, res);
		res.emit("close");
		expect(metrics.getMetric(MCP_METRIC.httpRequestsTotal)!.get({ route: "/api/v1/tasks", method: "POST", status: String(CLIENT_CLOSED_STATUS) })).toMatchObject({ value: 1 });

		const off = fakeExchange({});
		watchHttpRequest(null, logger, off.req, off.res);
		off.res.writableFinished = true;
		off.res.statusCode = 404;
		off.res.emit("finish");
		expect(lines.at(-1)).toMatchObject({ level: "info", fields: { route: "unmatched", status: 404 } });
	});
});
