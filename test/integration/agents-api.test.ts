/**
 * The agent API over real HTTP, as the contract describes it: on the embedded store and on PostgreSQL.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { TEST_SECRETS } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { startServer, type TestServer } from "../support/server";
import { describeWith, POSTGRES, type Requirement } from "../support/services";

const registration = (name: string, extra: Record<string, unknown> = {}) => ({
	name,
	type: "worker",
	capabilities: ["task-execution", "data-processing"],
	resources: { cpu: 4, memory: "8GB", gpu: true },
	...extra
});

const stores: Array<{ name: string; needs: Requirement[]; env: () => Promise<Record<string, string>>; done?: () => Promise<void> }> = [{ name: "embedded NeDB", needs: [], env: async () => ({}) }];
let pg: TestDatabase | undefined;
stores.push({
	name: "PostgreSQL",
	needs: [POSTGRES],
	env: async () => {
		pg = await createTestDatabase();
		return { DATABASE_URL: pg.url };
	},
	done: async () => pg?.drop()
});

for (const store of stores) describeWith(...store.needs)(`agents API on ${store.name}`, () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;

	beforeAll(async () => {
		server = await startServer({ ...(await store.env()), MAX_AGENTS: "5", HEARTBEAT_TIMEOUT_MS: "600", HEALTH_CHECK_INTERVAL_MS: "200" });
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
	});
	afterAll(async () => {
		await server?.stop();
		await store.done?.();
	});
	it("registers with the API key: 201 with id, token and the spec's fields", async () => {
		const res = await request(server.url, "POST", "/api/v1/agents/register", {
			body: registration("data-processor", { endpoints: { task: "http://127.0.0.1:1/task", health: "http://127.0.0.1:1/health" } }),
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		expect(res.status).toBe(201);
		expect(res.body).toMatchObject({
			id: expect.stringMatching(/^agent-/),
			token: expect.any(String),
			name: "data-processor",
			type: "worker",
			status: "active",
			capabilities: ["task-execution", "data-processing"],
			current_load: 0,
			running_tasks: 0,
			resources: { cpu: 4, memory: "8GB", gpu: true },
			node_id: null
		});
		expect(Date.parse(res.body.last_heartbeat)).toBeGreaterThan(Date.now() - 5000);
	});

	it("registering the same name again keeps the id and updates the agent", async () => {
		const first = await operator.post("/api/v1/agents/register", registration("same-name"));
		const second = await operator.post("/api/v1/agents/register", registration("same-name", { type: "validator", capabilities: ["validation"] }));
		expect(first.status).toBe(201);
		expect(second.body.id).toBe(first.body.id);
		const got = await viewer.get(`/api/v1/agents/${first.body.id}`);
		expect(got.body).toMatchObject({ type: "validator", capabilities: ["validation"] });
		const all = await viewer.get("/api/v1/agents");
		expect(all.body.agents.filter((a: { name: string }) => a.name === "same-name")).toHaveLength(1);
	});

	it("lists with filters on type, status and capability", async () => {
		await operator.post("/api/v1/agents/register", registration("orch-1", { type: "orchestrator", capabilities: ["planning"] }));
		const byType = await viewer.get("/api/v1/agents?type=orchestrator");
		expect(byType.status).toBe(200);
		expect(byType.body.agents.map((a: { name: string }) => a.name)).toEqual(["orch-1"]);
		const byCap = await viewer.get("/api/v1/agents?capability=validation");
		expect(byCap.body.agents.map((a: { name: string }) => a.name)).toEqual(["same-name"]);
		const byStatus = await viewer.get("/api/v1/agents?status=draining");
		expect(byStatus.body.agents).toEqual([]);
		const bad = await viewer.get("/api/v1/agents?status=sleepy");
		expect(bad.status).toBe(422);
		expect(bad.body.error.code).toBe("VALIDATION_ERROR");
		expect(bad.body.error.details[0].field).toBe("status");
	});

	it("422 names each bad field, and nothing is stored", async () => {
		const before = (await viewer.get("/api/v1/agents")).body.agents.length;
		const res = await operator.post("/api/v1/agents/register", { name: "", type: "robot", capabilities: "x", endpoints: { task: "not a url" } });
		expect(res.status).toBe(422);
		const fields = res.body.error.details.map((d: { field: string }) => d.field).sort();
		expect(fields).toEqual(expect.arrayContaining(["name", "type", "capabilities", "endpoints.task"]));
		expect((await viewer.get("/api/v1/agents")).body.agents.length).toBe(before);
	});

	it("404 for an unknown id, with the contract's body", async () => {
		const res = await viewer.get("/api/v1/agents/agent-nope");
		expect(res.status).toBe(404);
		expect(res.body).toEqual({ error: { code: "NOT_FOUND", message: expect.stringContaining("agent-nope"), details: { id: "agent-nope" } } });
	});

	it("heartbeat with the agent's own token; another agent's token is 403", async () => {
		const a = (await operator.post("/api/v1/agents/register", registration("hb-a"))).body;
		const b = (await operator.post("/api/v1/agents/register", registration("hb-b"))).body;
		const ok = await request(server.url, "POST", `/api/v1/agents/${a.id}/heartbeat`, { token: a.token, body: { status: "busy", current_load: 0.75 } });
		expect(ok.status).toBe(200);
		expect((await viewer.get(`/api/v1/agents/${a.id}`)).body).toMatchObject({ status: "busy", current_load: 0.75 });
		const forged = await request(server.url, "POST", `/api/v1/agents/${a.id}/heartbeat`, { token: b.token, body: {} });
		expect(forged.status).toBe(403);
		// An agent token reads nothing else.
		expect((await request(server.url, "GET", "/api/v1/agents", { token: a.token })).status).toBe(403);
		const badLoad = await request(server.url, "POST", `/api/v1/agents/${a.id}/heartbeat`, { token: a.token, body: { current_load: 7 } });
		expect(badLoad.status).toBe(422);
		await operator.delete(`/api/v1/agents/${a.id}`);
		await operator.delete(`/api/v1/agents/${b.id}`);
	});

	it("an agent silent for HEARTBEAT_TIMEOUT_MS goes offline; a heartbeat brings it back", async () => {
		const agent = (await operator.post("/api/v1/agents/register", registration("quiet"))).body;
		await waitFor(async () => (await viewer.get(`/api/v1/agents/${agent.id}`)).body.status === "offline", 5000);
		await request(server.url, "POST", `/api/v1/agents/${agent.id}/heartbeat`, { token: agent.token, body: {} });
		expect((await viewer.get(`/api/v1/agents/${agent.id}`)).body.status).toBe("active");
		await operator.delete(`/api/v1/agents/${agent.id}`);
	});

	it("polls HTTP agents' health endpoint: failures mark unhealthy, recovery marks active", async () => {
		let healthy = true;
		const agentServer = http.createServer((_req, res) => {
			res.statusCode = healthy ? 200 : 500;
			res.end(healthy ? "ok" : "down");
		});
		await new Promise<void>(r => agentServer.listen(0, "127.0.0.1", r));
		const port = (agentServer.address() as AddressInfo).port;
		try {
			const agent = (await operator.post("/api/v1/agents/register", registration("http-agent", { endpoints: { health: `http://127.0.0.1:${port}/health` } }))).body;
			healthy = false;
			await waitFor(async () => (await viewer.get(`/api/v1/agents/${agent.id}`)).body.status === "unhealthy", 5000);
			healthy = true;
			await waitFor(async () => (await viewer.get(`/api/v1/agents/${agent.id}`)).body.status === "active", 5000);
			await operator.delete(`/api/v1/agents/${agent.id}`);
		} finally {
			agentServer.close();
		}
	});

	it("MAX_AGENTS is enforced with 409; re-registering an existing agent still works", async () => {
		// MAX_AGENTS bounds what is stored, offline agents included.
		const stored = (await viewer.get("/api/v1/agents")).body.total as number;
		const names: string[] = [];
		for (let i = stored; i < 5; i++) {
			names.push(`cap-${i}`);
			expect((await operator.post("/api/v1/agents/register", registration(`cap-${i}`))).status).toBe(201);
		}
		const over = await operator.post("/api/v1/agents/register", registration("one-too-many"));
		expect(over.status).toBe(409);
		expect(over.body.error.code).toBe("CONFLICT");
		if (names.length) expect((await operator.post("/api/v1/agents/register", registration(names[0]))).status).toBe(201);
		for (const a of (await viewer.get("/api/v1/agents")).body.agents) await operator.delete(`/api/v1/agents/${a.id}`);
	});

	it("DELETE deregisters: then 404", async () => {
		const agent = (await operator.post("/api/v1/agents/register", registration("to-delete"))).body;
		expect((await viewer.delete(`/api/v1/agents/${agent.id}`)).status).toBe(403);
		expect((await operator.delete(`/api/v1/agents/${agent.id}`)).status).toBe(200);
		expect((await viewer.get(`/api/v1/agents/${agent.id}`)).status).toBe(404);
		expect((await operator.delete(`/api/v1/agents/${agent.id}`)).status).toBe(404);
	});
});
