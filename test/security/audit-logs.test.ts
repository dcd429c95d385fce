/**
 * What the audit log and the log lines keep (contract, "Hardening"): anonymous requests are rate
 * limited before routing and their probes of unknown routes are never audited; audited paths have
 * no query string, and nothing a query carried reaches an audit field; a real server process at
 * LOG_LEVEL=debug writes no query-string secret, no JWT_SECRET, no API_KEY and no bearer token it
 * was sent (a user's, an exchanged one, an agent's, a task callback's, a forged one).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { ensureBuilt, freePort, startNode, type ManagedProcess } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { complete, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";
import { mintToken } from "../../src/platform/tokens";
import type { AuditEntry } from "../../src/types";

const QUERY_SECRET = `SECRET123-${randomBytes(6).toString("hex")}`;

const auditEntries = async (server: TestServer) => {
	const res = await request<{ entries: AuditEntry[]; total: number }>(server.url, "GET", "/api/v1/audit?limit=1000", { token: server.token(["admin"], "auditor") });
	expect(res.status).toBe(200);
	return res.body.entries;
};

describe("anonymous probes of unknown routes", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({ RATE_LIMIT_PER_MINUTE: "5", HEALTH_CHECK_INTERVAL_MS: "60000" })));
	afterAll(() => server?.stop());

	test("are rate limited by address before routing (the 6th is 429 with Retry-After) and none is audited", async () => {
		const probes: Array<[string, string]> = [
			["POST", "/api/v1/does-not-exist"],
			["DELETE", "/api/v1/tasks"],
			["PUT", `/api/v1/agents/${randomUUID()}`],
			["PATCH", "/api/v1/pipelines"],
			["POST", "/admin/shell"],
			["POST", "/api/v2/tasks"],
			["DELETE", "/api/v1/audit"],
			["POST", "/api/v1/tasks/x/../../../etc/passwd"]
		];
		const statuses: number[] = [];
		for (const [method, path] of probes) {
			const res = await request(server.url, method, `${path}?api_key=${QUERY_SECRET}`, { body: { probe: true } });
			statuses.push(res.status);
			if (res.status === 429) {
				expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
				expect(res.body.error.code).toBe("RATE_LIMITED");
			}
		}
		expect(statuses.slice(0, 5).every(s => s !== 429 && s < 500)).toBe(true);
		expect(statuses.slice(5)).toEqual([429, 429, 429]);

		// The node's own probes still answer: the prober's budget is spent, not theirs.
		expect((await request(server.url, "GET", "/health")).status).toBe(200);
		expect((await request(server.url, "GET", "/ready")).status).toBe(200);
		expect((await request(server.url, "GET", "/api/v1/tasks")).status).toBe(429);

		const entries = await auditEntries(server);
		expect(entries.filter(e => e.actor === "anonymous")).toEqual([]);
		expect(entries.filter(e => probes.some(([, path]) => e.path.startsWith(path.split("/..")[0])))).toEqual([]);
		expect(JSON.stringify(entries)).not.toContain(QUERY_SECRET);
	});
});

describe("audited calls with a query string", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	beforeAll(async () => {
		server = await startServer({ HEALTH_CHECK_INTERVAL_MS: "60000" });
		operator = client(server.url, server.token(["operator"], "olive"));
	});
	afterAll(() => server?.stop());

	test("are audited with the path alone, successes and failures; no audit field, nor anything stored, holds what the query carried", async () => {
		const query = `?api_key=${QUERY_SECRET}&token=abc-${QUERY_SECRET}`;
		const created = await operator.post(`/api/v1/tasks${query}`, { type: "audit-check" });
		expect(created.status).toBe(201);
		const refused = await operator.post(`/api/v1/tasks${query}`, { type: 42 });
		expect(refused.status).toBe(422);
		const missing = await operator.delete(`/api/v1/agents/agent-nope${query}`);
		expect(missing.status).toBe(404);
		const registered = await request(server.url, "POST", `/api/v1/agents/register${query}`, {
			body: { name: "audit-agent", type: "worker", capabilities: ["audit-only"] },
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		expect(registered.status).toBe(201);
		expect((await operator.post(`/api/v1/no-such-route${query}`, {})).status).toBe(404);

		const entries = await waitFor(async () => {
			const all = await auditEntries(server);
			return all.length >= 4 && all;
		});
		expect(entries).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ action: "tasks.create", method: "POST", path: "/api/v1/tasks", target: created.body.task_id, result: "success", status: 201, actor: "olive" }),
				expect.objectContaining({ action: "tasks.create", path: "/api/v1/tasks", result: "failure", status: 422 }),
				expect.objectContaining({ action: "agents.remove", method: "DELETE", path: "/api/v1/agents/agent-nope", target: "agent-nope", result: "failure", status: 404 }),
				expect.objectContaining({ action: "agents.register", path: "/api/v1/agents/register", actor: "api-key", target: registered.body.id, status: 201 })
			])
		);
		for (const entry of entries) expect(entry.path).not.toContain("?");
		expect(JSON.stringify(entries)).not.toContain(QUERY_SECRET);
		expect(JSON.stringify((await operator.get(`/api/v1/tasks/${created.body.task_id}`)).body)).not.toContain(QUERY_SECRET);
		expect(JSON.stringify((await operator.get(`/api/v1/agents/${registered.body.id}`)).body)).not.toContain(QUERY_SECRET);
	});
});

describe("log lines of a real server process at LOG_LEVEL=debug", () => {
	let proc: ManagedProcess | undefined;
	let agent: HttpAgent | undefined;
	beforeAll(() => ensureBuilt());
	afterAll(async () => {
		if (proc) await stopGracefully(proc);
		await agent?.close();
	});

	/** Stops the node so its last lines are flushed, killing it if it hangs. */
	async function stopGracefully(node: ManagedProcess) {
		const killed = setTimeout(() => void node.kill("SIGKILL"), 10_000);
		await node.kill("SIGTERM");
		clearTimeout(killed);
	}

	test("never contain a query-string secret, JWT_SECRET, API_KEY or any bearer token the server was sent", async () => {
		const secrets = { JWT_SECRET: `jwt-${randomBytes(24).toString("hex")}`, API_KEY: `key-${randomBytes(24).toString("hex")}` };
		const port = await freePort();
		const url = `http://127.0.0.1:${port}`;
		const node = (proc = startNode(`audit-logs-${process.pid}`, {
			...secrets,
			DATA_DIR: tempDir("mcp-audit-logs-"),
			SERVER_PORT: String(port),
			LOG_LEVEL: "debug",
			TRANSPORTER: "",
			NODE_ENV: "development",
			HEALTH_CHECK_INTERVAL_MS: "60000",
			NAMESPACE: `audit-logs-${process.pid}`
		}));
		const stderr: string[] = [];
		node.process.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
		const operatorToken = mintToken(secrets.JWT_SECRET, { sub: "log-operator", roles: ["operator"], expiresInSec: 600 });
		// /ready covers the store, transporter and Redis, not each service's start: on a loaded machine the
		// gateway answers before every service it routes to is up (503). Wait for those this test calls.
		const answers = (path: string) =>
			fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${operatorToken}` } }).then(r => r.status === 200, () => false);
		await waitFor(async () => {
			if (node.process.exitCode !== null) throw new Error(`server exited early:\n${node.output.join("")}`);
			return (await answers("/ready")) && (await answers("/api/v1/pipelines")) && answers("/api/v1/agents");
		}, 30_000, 100);

		const sent: string[] = [operatorToken];
		const query = `?api_key=${QUERY_SECRET}&token=${QUERY_SECRET}-t&password=${QUERY_SECRET}-p`;
		expect((await request(url, "POST", `/api/v1/tasks${query}`, { token: operatorToken, body: { type: "log-check" } })).status).toBe(201);
		expect((await request(url, "GET", `/api/v1/tasks${query}`, { token: operatorToken })).status).toBe(200);
		expect((await request(url, "POST", `/api/v1/tasks${query}`, { token: operatorToken, body: { type: [] } })).status).toBe(422);
		expect((await request(url, "GET", `/api/v1/nowhere${query}`, { token: operatorToken })).status).toBe(404);
		expect((await request(url, "GET", `/nowhere${query}`)).status).toBe(404);

		const forged = `${operatorToken.slice(0, -6)}AAAAAA`;
		sent.push(forged);
		expect((await request(url, "GET", "/api/v1/agents", { token: forged })).status).toBe(401);
		const foreign = mintToken("some-other-secret", { sub: "intruder", roles: ["admin"], expiresInSec: 600 });
		sent.push(foreign);
		expect((await request(url, "GET", "/api/v1/audit", { token: foreign })).status).toBe(401);
		expect((await request(url, "POST", "/api/v1/agents/register", { body: { name: "x", type: "worker", capabilities: ["x"] }, headers: { "X-API-Key": `${secrets.API_KEY}-wrong` } })).status).toBe(401);

		// A token bought with the API key in the body, then used (a query's api_key would override the body's).
		const exchanged = await request(url, "POST", `/api/v1/auth/token?password=${QUERY_SECRET}-p`, { body: { api_key: secrets.API_KEY, sub: "log-bot", roles: ["viewer"], expires_in: 600 } });
		expect(exchanged.status).toBe(200);
		sent.push(exchanged.body.token);
		expect((await request(url, "GET", "/api/v1/pipelines", { token: exchanged.body.token })).status).toBe(200);

		// A real HTTP agent: registered with the key, heartbeating with its token, completing a task with its callback token.
		agent = await startHttpAgent();
		agent.script = complete({ logged: false });
		const capability = `log-${randomUUID()}`;
		const registered = await request(url, "POST", `/api/v1/agents/register${query}`, {
			body: { name: "log-agent", type: "worker", capabilities: [capability], endpoints: { task: agent.endpoints.task } },
			headers: { "X-API-Key": secrets.API_KEY }
		});
		expect(registered.status).toBe(201);
		sent.push(registered.body.token);
		expect((await request(url, "POST", `/api/v1/agents/${registered.body.id}/heartbeat`, { token: registered.body.token, body: {} })).status).toBe(200);
		const task = await request(url, "POST", "/api/v1/tasks", { token: operatorToken, body: { type: capability } });
		await waitFor(async () => (await request(url, "GET", `/api/v1/tasks/${task.body.task_id}`, { token: operatorToken })).body.status === "completed");
		const delivery = agent.deliveries.find(d => d.task_id === task.body.task_id)!;
		sent.push(delivery.callback_token);
		await stopGracefully(node);

		const output = node.stdout.join("") + stderr.join("");
		const lines = node.stdout.join("").split("\n").filter(line => line.trim());
		// The lines are there to be read: the debug level wrote the calls and the access log.
		expect(lines.length).toBeGreaterThan(50);
		expect(lines.some(line => line.includes('"msg":"http request"') && line.includes('"path":"/api/v1/tasks"'))).toBe(true);
		expect(lines.some(line => line.includes('"level":20'))).toBe(true);
		for (const [what, value] of Object.entries({ QUERY_SECRET, ...secrets, ...Object.fromEntries(sent.map((t, i) => [`bearer token ${i}`, t])) }))
			expect({ what, logged: output.includes(value) }).toEqual({ what, logged: false });
		// Nor the signature part of any of them alone.
		for (const token of sent) expect(output).not.toContain(token.split(".")[2]);
	});
});
