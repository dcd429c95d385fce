/**
 * Operations end to end: `GET /metrics` after real work (an HTTP agent completing a task), the
 * structured logs of the real server process (moleculer-runner over dist/), and `/ready` following
 * a private NATS server going away and coming back.
 */
import fs from "node:fs";
import WebSocket from "ws";
import path from "node:path";
import { mintToken } from "../../src/platform/tokens";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { complete, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { ensureBuilt, freePort, startNatsServer, startNode, type ManagedProcess } from "../support/cluster";
import { startServer, type TestServer } from "../support/server";

jest.setTimeout(90_000);


/** The value of the first sample of `name` carrying all of `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
	for (const line of text.split("\n")) {
		const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
		if (!match || match[1] !== name) continue;
		const set = match[2] ?? "";
		if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) return Number(match[3]);
	}
	return undefined;
}

describe("GET /metrics", () => {
	let server: TestServer;
	let agent: HttpAgent;
	let operator: ReturnType<typeof client>;

	beforeAll(async () => {
		server = await startServer({ METRICS_ENABLED: "true", HEALTH_CHECK_INTERVAL_MS: "60000" });
		agent = await startHttpAgent();
		operator = client(server.url, server.token(["operator"], "olive"));
	});
	afterAll(async () => {
		await server.stop();
		await agent.close();
	});

	test("task, agent and HTTP figures move with real work, in Prometheus text, without auth", async () => {
		agent.script = complete({ ok: true });
		const registered = await operator.post("/api/v1/agents/register", { name: "ops-agent", type: "worker", capabilities: ["ops-metrics"], endpoints: { task: agent.endpoints.task } });
		expect(registered.status).toBe(201);
		const heartbeat = await request(server.url, "POST", `/api/v1/agents/${registered.body.id}/heartbeat`, { token: registered.body.token, body: {} });
		expect(heartbeat.status).toBe(200);
		const created = await operator.post("/api/v1/tasks", { type: "ops-metrics" });
		expect(created.status).toBe(201);
		await waitFor(async () => (await operator.get(`/api/v1/tasks/${created.body.task_id}`)).body.status === "completed");

		const scrape = async () => {
			const res = await fetch(`${server.url}/metrics`);
			expect(res.status).toBe(200);
			expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
			return res.text();
		};
		// The completion event reaches the metrics service a moment after the task reads completed,
		// and the gauges are written once a second.
		const text = await waitFor(async () => {
			const t = await scrape();
			// "ops-metrics" is no stage type: its label is "other" (a client must not multiply series).
			const completed = sample(t, "mcp_task_execution_seconds_count", { status: "completed", type: "other" }) ?? 0;
			return completed >= 1 && sample(t, "mcp_task_queue_depth") === 0 && sample(t, "mcp_agents", { status: "active" }) === 1 ? t : undefined;
		});
		const node = { node_id: server.broker.nodeID };
		expect(sample(text, "mcp_tasks_total", { ...node, status: "completed", type: "other" })).toBeGreaterThanOrEqual(1);
		expect(sample(text, "mcp_tasks_total", { status: "pending", type: "other" })).toBeGreaterThanOrEqual(1);
		expect(text).not.toContain('type="ops-metrics"');
		expect(sample(text, "mcp_tasks_by_status", { status: "completed" })).toBeGreaterThanOrEqual(1);
		expect(sample(text, "mcp_task_queue_depth")).toBe(0);
		expect(sample(text, "mcp_task_wait_seconds_count", { priority: "medium" })).toBeGreaterThanOrEqual(1);
		expect(sample(text, "mcp_http_requests_total", { route: "/api/v1/tasks", method: "POST", status: "201" })).toBeGreaterThanOrEqual(1);
		expect(sample(text, "mcp_http_requests_total", { route: "/api/v1/agents/register", method: "POST", status: "201" })).toBe(1);
		expect(sample(text, "mcp_http_request_duration_seconds_count", { route: "/api/v1/tasks", method: "POST" })).toBeGreaterThanOrEqual(1);
		expect(sample(text, "mcp_agents", { status: "active" })).toBe(1);
		expect(sample(text, "mcp_agent_heartbeats_total")).toBeGreaterThanOrEqual(1);
		// Moleculer's built-in figures come along.
		expect(sample(text, "moleculer_request_total", { action: "tasks.create" })).toBeGreaterThanOrEqual(1);

		// The scrape itself is counted on the next one, under its route pattern.
		const again = await scrape();
		expect(sample(again, "mcp_http_requests_total", { route: "/metrics", method: "GET", status: "200" })).toBeGreaterThanOrEqual(1);
	});

	test("open real-time connections are a gauge", async () => {
		const socket = new WebSocket(`${server.url.replace("http", "ws")}/ws`);
		await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
		try {
			await waitFor(async () => sample(await (await fetch(`${server.url}/metrics`)).text(), "mcp_ws_connections") === 1);
		} finally {
			socket.close();
		}
		await waitFor(async () => sample(await (await fetch(`${server.url}/metrics`)).text(), "mcp_ws_connections") === 0);
	});

	test("an unknown path is counted under one label, not its raw path", async () => {
		expect((await fetch(`${server.url}/no/such/thing-${Date.now()}`)).status).toBe(404);
		const text = await (await fetch(`${server.url}/metrics`)).text();
		expect(sample(text, "mcp_http_requests_total", { route: "unmatched", status: "404" })).toBeGreaterThanOrEqual(1);
		expect(text).not.toContain("/no/such/thing");
	});
});

test("METRICS_ENABLED=false: no /metrics at all", async () => {
	const server = await startServer({ METRICS_ENABLED: "false" });
	try {
		const res = await request(server.url, "GET", "/metrics");
		expect(res.status).toBe(404);
		expect(res.body).toMatchObject({ error: { code: "NOT_FOUND" } });
		expect((await request(server.url, "GET", "/health")).status).toBe(200);
	} finally {
		await server.stop();
	}
});

/** Stops the node gracefully (its last log lines are flushed), killing it if it hangs. */
async function stopGracefully(proc: ManagedProcess) {
	const killed = setTimeout(() => void proc.kill("SIGKILL"), 10_000);
	await proc.kill("SIGTERM");
	clearTimeout(killed);
}

describe("structured logs of the real server", () => {
	let proc: ManagedProcess | undefined;

	beforeAll(() => ensureBuilt());
	afterAll(async () => {
		if (proc) await stopGracefully(proc);
	});

	test("every line is JSON; a REST call's request id reaches the gateway's and the service's lines; no credential is written", async () => {
		const port = await freePort();
		const url = `http://127.0.0.1:${port}`;
		const logDir = path.join(tempDir("mcp-logdir-"), "logs");
		proc = startNode(`logs-${process.pid}`, {
			LOG_DIR: logDir,
			DATA_DIR: tempDir("mcp-logs-"),
			SERVER_PORT: String(port),
			...TEST_SECRETS,
			LOG_LEVEL: "debug",
			TRANSPORTER: "",
			NODE_ENV: "development",
			NAMESPACE: `logs-${process.pid}`
		});
		const current = proc;
		const token = mintToken(TEST_SECRETS.JWT_SECRET, { sub: "log-tester", roles: ["operator"], expiresInSec: 600 });
		await waitFor(async () => {
			if (current.process.exitCode !== null) throw new Error(`server exited early:\n${current.output.join("")}`);
			try {
				return (await fetch(`${url}/api/v1/tasks?limit=1`, { headers: { Authorization: `Bearer ${token}` } })).ok;
			} catch {
				return false;
			}
		}, 30_000, 100);

		const created = await request(url, "POST", "/api/v1/tasks", { token, body: { type: "log-check" }, headers: { "X-Request-ID": "test-req-123" } });
		expect(created.status).toBe(201);
		expect(created.headers.get("x-request-id")).toBe("test-req-123");
		// An API key and a bad token, which must not be written either.
		await request(url, "POST", "/api/v1/agents/register", { body: { name: "key-agent", type: "worker", capabilities: ["x"] }, headers: { "X-API-Key": TEST_SECRETS.API_KEY } });
		const badToken = `${token.slice(0, -4)}AAAA`;
		expect((await request(url, "GET", "/api/v1/agents", { token: badToken })).status).toBe(401);
		await stopGracefully(current);

		const raw = current.stdout.join("").split("\n").filter(line => line.trim());
		const lines = raw.map(line => {
			try {
				return JSON.parse(line) as Record<string, unknown>;
			} catch {
				throw new Error(`not a JSON log line: ${line}`);
			}
		});
		expect(lines.length).toBeGreaterThan(20);

		const tagged = lines.filter(l => l.request_id === "test-req-123");
		const modules = new Set(tagged.map(l => l.mod));
		expect(modules).toContain("api");
		expect(modules).toContain("tasks");
		expect(tagged).toContainEqual(expect.objectContaining({ mod: "tasks", msg: "call tasks.create", level: 20 }));
		expect(tagged).toContainEqual(
			expect.objectContaining({ mod: "api", msg: "http request", level: 30, method: "POST", path: "/api/v1/tasks", status: 201, sub: "log-tester", duration_ms: expect.any(Number) })
		);

		const everything = current.output.join("");
		for (const secret of [token, badToken, TEST_SECRETS.JWT_SECRET, TEST_SECRETS.API_KEY]) expect(everything).not.toContain(secret);

		// LOG_DIR: the same lines in a rotated file (pino-roll names it by date and number).
		const files = fs.readdirSync(logDir);
		expect(files).toEqual([expect.stringMatching(/^mcp-server\.\d{4}-\d{2}-\d{2}\.1\.log$/)]);
		const fileLines = fs.readFileSync(path.join(logDir, files[0]), "utf8").split("\n").filter(Boolean);
		expect(fileLines.length).toBeGreaterThan(20);
		expect(fileLines.some(line => line.includes('"request_id":"test-req-123"') && line.includes('"msg":"http request"'))).toBe(true);
	});
});

describe("/ready follows the transporter", () => {
	let nats: ManagedProcess | undefined;
	let server: TestServer | undefined;

	afterAll(async () => {
		await server?.stop().catch(() => undefined);
		await nats?.kill();
	});

	const readiness = async () => request<{ status: string; checks: Record<string, string> }>(server!.url, "GET", "/ready");

	test("NATS down → 503 naming the transporter; NATS back on the same port → ready again", async () => {
		const port = await freePort();
		nats = await startNatsServer(port);
		server = await startServer({ TRANSPORTER: `nats://127.0.0.1:${port}`, NAMESPACE: `ready-${process.pid}` });
		await waitFor(async () => (await readiness()).status === 200, 15_000);

		await nats.kill();
		const down = await waitFor(async () => {
			const res = await readiness();
			return res.status === 503 ? res : undefined;
		}, 15_000, 200);
		expect(down.body.status).toBe("not_ready");
		expect(down.body.checks.transporter).toBeDefined();
		expect(down.body.checks.transporter).not.toBe("ok");
		expect(down.body.checks.store).toBe("ok");

		nats = await startNatsServer(port);
		const up = await waitFor(async () => {
			const res = await readiness();
			return res.status === 200 ? res : undefined;
		}, 30_000, 200);
		expect(up.body).toMatchObject({ status: "ready", checks: { transporter: "ok", store: "ok" } });
	});
});
