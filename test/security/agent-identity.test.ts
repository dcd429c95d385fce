/**
 * Agent identity over real HTTP (contract, "Hardening" and "Agents"): agent tokens name their
 * registration (`rat`) and expire; a live name needs its own token or an operator (the API key
 * alone: 409); removal and retention revoke every token of the registration at once, restarts
 * included; MAX_AGENTS counts what is stored; GET /agents pages; a callback token speaks for its
 * own attempt only. Agents are real HTTP agents on loopback holding real tasks.
 */
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import { TEST_SECRETS, tempDir } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { fail, silent, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";
import { verifyToken } from "../../src/platform/tokens";
import type { TaskDelivery } from "../../src/types";

type AgentClaims = jwt.JwtPayload & { agent_id: string; rat: string; roles: string[] };
const claims = (token: string) => jwt.decode(token) as AgentClaims;
/** Capabilities of its own unless told otherwise: no agent of one test takes another test's task. */
const registration = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: "worker", capabilities: [`only-${name}`], ...extra });

/** The calls an agent makes, against one server. */
function agentCalls(server: () => TestServer) {
	const base = () => server().url;
	return {
		registerWithKey: (body: object) => request(base(), "POST", "/api/v1/agents/register", { body, headers: { "X-API-Key": TEST_SECRETS.API_KEY } }),
		registerWithToken: (token: string, body: object) => request(base(), "POST", "/api/v1/agents/register", { token, body }),
		heartbeat: (id: string, token: string, body: object = {}) => request(base(), "POST", `/api/v1/agents/${id}/heartbeat`, { token, body }),
		/** A callback as the delivery names it, sent to this server (its port may have changed since). */
		callback: (delivery: TaskDelivery, kind: "complete" | "fail" | "progress", body: object, token = delivery.callback_token) =>
			request(base(), "POST", new URL(delivery.callbacks[kind]).pathname, { token, body })
	};
}

describe("agent identity", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	const agents: HttpAgent[] = [];
	const calls = agentCalls(() => server);
	const TTL = 3600;

	beforeAll(async () => {
		server = await startServer({ AGENT_TOKEN_TTL_SEC: String(TTL), HEALTH_CHECK_INTERVAL_MS: "60000", RETRY_BASE_DELAY_MS: "50", RETRY_MAX_DELAY_MS: "100" });
		operator = client(server.url, server.token(["operator"], "olive"));
	});
	afterAll(async () => {
		await server?.stop();
		await Promise.all(agents.map(a => a.close()));
	});

	/** A real HTTP agent registered with the API key, taking only tasks of its own capability. */
	async function httpAgent(script = silent) {
		const agent = await startHttpAgent();
		agents.push(agent);
		agent.script = script;
		const capability = `cap-${randomUUID()}`;
		const res = await calls.registerWithKey(registration(`http-${capability}`, { capabilities: [capability], endpoints: { task: agent.endpoints.task } }));
		expect(res.status).toBe(201);
		return { agent, capability, id: res.body.id as string, token: res.body.token as string, name: res.body.name as string, registered_at: res.body.registered_at as string };
	}

	const taskOf = async (id: string) => (await operator.get(`/api/v1/tasks/${id}`)).body;

	test("a live agent's name with the API key alone: 409, and its endpoints, registration and token stay as they were", async () => {
		const first = await calls.registerWithKey(registration("live-1", { endpoints: { task: "http://127.0.0.1:9/task" } }));
		expect(first.status).toBe(201);
		const takeover = await calls.registerWithKey(registration("live-1", { endpoints: { task: "http://attacker.example/task" } }));
		expect(takeover.status).toBe(409);
		expect(takeover.body.error.code).toBe("CONFLICT");
		const stored = (await operator.get(`/api/v1/agents/${first.body.id}`)).body;
		expect(stored.endpoints).toEqual({ task: "http://127.0.0.1:9/task" });
		expect(stored.registered_at).toBe(first.body.registered_at);
		expect((await calls.heartbeat(first.body.id, first.body.token)).status).toBe(200);
	});

	test("with its own token: 201, the same id and registered_at, and both tokens still work", async () => {
		const first = await calls.registerWithKey(registration("own-1"));
		const again = await calls.registerWithToken(first.body.token, registration("own-1", { capabilities: ["only-own-1", "extra"] }));
		expect(again.status).toBe(201);
		expect(again.body).toMatchObject({ id: first.body.id, registered_at: first.body.registered_at, capabilities: ["only-own-1", "extra"] });
		expect(claims(again.body.token)).toMatchObject({ agent_id: first.body.id, rat: first.body.registered_at });
		expect((await calls.heartbeat(first.body.id, first.body.token)).status).toBe(200);
		expect((await calls.heartbeat(first.body.id, again.body.token)).status).toBe(200);
	});

	test("an agent's token registers nothing else: another live name or a new one is 403", async () => {
		const mine = await calls.registerWithKey(registration("own-2"));
		const other = await calls.registerWithKey(registration("other-2"));
		const before = (await operator.get("/api/v1/agents")).body.total;
		expect((await calls.registerWithToken(mine.body.token, registration("other-2"))).status).toBe(403);
		expect((await calls.registerWithToken(mine.body.token, registration(`brand-new-${randomUUID()}`))).status).toBe(403);
		expect((await operator.get(`/api/v1/agents/${other.body.id}`)).body.registered_at).toBe(other.body.registered_at);
		expect((await operator.get("/api/v1/agents")).body.total).toBe(before);
	});

	test("an operator may re-register a live name: same id, registration kept", async () => {
		const first = await calls.registerWithKey(registration("op-1"));
		const again = await operator.post("/api/v1/agents/register", registration("op-1", { type: "validator" }));
		expect(again.status).toBe(201);
		expect(again.body).toMatchObject({ id: first.body.id, registered_at: first.body.registered_at, type: "validator" });
		expect((await calls.heartbeat(first.body.id, first.body.token)).status).toBe(200);
	});

	test("DELETE revokes at once: the agent's token and the callback token of the task it holds get 401", async () => {
		const a = await httpAgent();
		const task = await operator.post("/api/v1/tasks", { type: a.capability });
		const delivery = await waitFor(async () => a.agent.deliveries.find(d => d.task_id === task.body.task_id));
		expect((await taskOf(task.body.task_id)).status).toBe("running");

		expect((await operator.delete(`/api/v1/agents/${a.id}`)).status).toBe(200);
		const heartbeat = await calls.heartbeat(a.id, a.token);
		expect(heartbeat.status).toBe(401);
		expect(heartbeat.body.error.code).toBe("UNAUTHORIZED");
		for (const [kind, body] of [["complete", { result: { forged: true } }], ["fail", { error: "forged" }], ["progress", { progress: 0.5 }]] as const)
			expect({ kind, status: (await calls.callback(delivery, kind, body)).status }).toEqual({ kind, status: 401 });
		expect(await taskOf(task.body.task_id)).toMatchObject({ result: null });
		await waitFor(async () => (await taskOf(task.body.task_id)).status === "pending");
		// Nor can the revoked token bring its agent back.
		expect((await calls.registerWithToken(a.token, registration(a.name, { capabilities: [a.capability] }))).status).toBe(401);
	});

	test("re-registering a removed name starts a new registration: the old tokens stand in for nothing", async () => {
		const a = await httpAgent();
		const task = await operator.post("/api/v1/tasks", { type: a.capability });
		const first = await waitFor(async () => a.agent.deliveries.find(d => d.task_id === task.body.task_id));
		expect((await operator.delete(`/api/v1/agents/${a.id}`)).status).toBe(200);

		const again = await calls.registerWithKey(registration(a.name, { capabilities: [a.capability], endpoints: { task: a.agent.endpoints.task } }));
		expect(again.status).toBe(201);
		expect(again.body.id).toBe(a.id);
		expect(Date.parse(again.body.registered_at)).toBeGreaterThan(Date.parse(a.registered_at));
		expect(claims(again.body.token).rat).toBe(again.body.registered_at);

		expect((await calls.heartbeat(a.id, a.token)).status).toBe(401);
		expect((await calls.heartbeat(a.id, again.body.token)).status).toBe(200);
		// The task went back to the queue and reaches the new registration; the first attempt's token is void.
		const second = await waitFor(async () => a.agent.deliveries.find(d => d.task_id === task.body.task_id && d.attempt > first.attempt));
		expect((await calls.callback(first, "complete", { result: { stale: true } })).status).toBe(401);
		expect((await calls.callback(second, "complete", { result: { ok: true } })).status).toBe(200);
		expect(await taskOf(task.body.task_id)).toMatchObject({ status: "completed", result: { ok: true } });
	});

	test("tokens carry rat and expire after AGENT_TOKEN_TTL_SEC; a heartbeat hands back a young token as it is and renews one whose life is partly spent", async () => {
		const reg = await calls.registerWithKey(registration("ttl-1"));
		const issued = claims(reg.body.token);
		expect(issued).toMatchObject({ agent_id: reg.body.id, rat: reg.body.registered_at, roles: ["agent"] });
		expect(issued.exp! - issued.iat!).toBe(TTL);

		const young = await calls.heartbeat(reg.body.id, reg.body.token);
		expect(young.status).toBe(200);
		expect(young.body.token).toBe(reg.body.token);

		// The same token as it would be half an hour later (no fake clock: signed with the server's own secret, issued 30 min ago).
		const iat = Math.floor(Date.now() / 1000) - TTL / 2;
		const halfSpent = jwt.sign({ sub: `agent:${reg.body.id}`, roles: ["agent"], agent_id: reg.body.id, rat: reg.body.registered_at, iat }, TEST_SECRETS.JWT_SECRET, { expiresIn: TTL });
		const renewed = await calls.heartbeat(reg.body.id, halfSpent);
		expect(renewed.status).toBe(200);
		expect(renewed.body.token).not.toBe(halfSpent);
		const fresh = claims(renewed.body.token);
		expect(fresh.exp!).toBeGreaterThan(claims(halfSpent).exp!);
		expect(fresh.exp! - fresh.iat!).toBe(TTL);
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, renewed.body.token)).toMatchObject({ agent_id: reg.body.id, rat: reg.body.registered_at, roles: ["agent"] });
		expect((await calls.heartbeat(reg.body.id, renewed.body.token)).status).toBe(200);

		const expired = jwt.sign({ sub: `agent:${reg.body.id}`, roles: ["agent"], agent_id: reg.body.id, rat: reg.body.registered_at, iat: iat - TTL }, TEST_SECRETS.JWT_SECRET, { expiresIn: TTL });
		expect((await calls.heartbeat(reg.body.id, expired)).status).toBe(401);
	});

	test("a callback token of attempt 1 cannot complete attempt 2: 409, and attempt 2 runs on", async () => {
		const a = await httpAgent();
		let deliveries = 0;
		a.agent.script = d => (deliveries++ === 0 ? fail("first attempt breaks", true)(d) : undefined);
		const task = await operator.post("/api/v1/tasks", { type: a.capability, retry_count: 2 });
		const [first, second] = await waitFor(async () => {
			const mine = a.agent.deliveries.filter(d => d.task_id === task.body.task_id);
			return mine.length >= 2 && mine;
		});
		expect([first.attempt, second.attempt]).toEqual([1, 2]);
		const late = await calls.callback(first, "complete", { result: { late: true } });
		expect(late.status).toBe(409);
		expect(late.body.error.code).toBe("CONFLICT");
		expect(await taskOf(task.body.task_id)).toMatchObject({ status: "running", attempt: 2, result: null });
		expect((await calls.callback(second, "complete", { result: { ok: true } })).status).toBe(200);
		expect(await taskOf(task.body.task_id)).toMatchObject({ status: "completed", result: { ok: true } });
	});

	test("GET /agents pages with limit and offset, and says the total", async () => {
		const capability = `page-${randomUUID()}`;
		const names = ["page-a", "page-b", "page-c", "page-d"].map(n => `${n}-${capability}`);
		for (const name of names) expect((await calls.registerWithKey(registration(name, { capabilities: [capability] }))).status).toBe(201);
		const page = await operator.get(`/api/v1/agents?capability=${capability}&limit=2&offset=1`);
		expect(page.status).toBe(200);
		expect(page.body).toMatchObject({ total: 4, limit: 2, offset: 1 });
		expect(page.body.agents.map((a: { name: string }) => a.name)).toEqual(names.slice(1, 3));
		expect((await operator.get(`/api/v1/agents?capability=${capability}&limit=2&offset=4`)).body).toMatchObject({ agents: [], total: 4 });
		const all = await operator.get("/api/v1/agents?limit=1");
		expect(all.body.agents).toHaveLength(1);
		expect(all.body.total).toBeGreaterThanOrEqual(4);
	});
});

describe("revocation survives a restart of the whole server on the same DATA_DIR", () => {
	let server: TestServer;
	let agent: HttpAgent;
	const calls = agentCalls(() => server);
	const env = { DATA_DIR: tempDir("mcp-identity-restart-"), HEALTH_CHECK_INTERVAL_MS: "60000" };
	afterAll(async () => {
		await server?.stop();
		await agent?.close();
	});

	test("a removed agent's token and its task's callback token are still 401 after the restart", async () => {
		server = await startServer(env);
		const operator = client(server.url, server.token(["operator"], "olive"));
		agent = await startHttpAgent();
		agent.script = silent;
		const capability = `restart-${randomUUID()}`;
		const reg = await calls.registerWithKey(registration(`restart-agent-${capability}`, { capabilities: [capability], endpoints: { task: agent.endpoints.task } }));
		const task = await operator.post("/api/v1/tasks", { type: capability });
		const delivery = await waitFor(async () => agent.deliveries.find(d => d.task_id === task.body.task_id));
		expect((await operator.delete(`/api/v1/agents/${reg.body.id}`)).status).toBe(200);
		await server.stop();

		server = await startServer(env);
		expect((await calls.heartbeat(reg.body.id, reg.body.token)).status).toBe(401);
		expect((await calls.callback(delivery, "complete", { result: { after: "restart" } })).status).toBe(401);
		const after = client(server.url, server.token(["viewer"], "vic"));
		expect((await after.get(`/api/v1/tasks/${task.body.task_id}`)).body).toMatchObject({ status: "pending", result: null });
		expect((await after.get(`/api/v1/agents/${reg.body.id}`)).status).toBe(404);
	});
});

describe("offline agents", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	const calls = agentCalls(() => server);
	beforeAll(async () => {
		server = await startServer({ HEARTBEAT_TIMEOUT_MS: "300", MAX_AGENTS: "3", HEALTH_CHECK_INTERVAL_MS: "60000" });
		operator = client(server.url, server.token(["operator"], "olive"));
	});
	afterAll(() => server?.stop());
	const offline = (id: string) => waitFor(async () => (await operator.get(`/api/v1/agents/${id}`)).body.status === "offline", 10_000);

	test("once it is offline the API key may re-claim the name: a new registered_at, and the old token is refused", async () => {
		const first = await calls.registerWithKey(registration("sleeper"));
		await offline(first.body.id);
		const claimed = await calls.registerWithKey(registration("sleeper"));
		expect(claimed.status).toBe(201);
		expect(claimed.body.id).toBe(first.body.id);
		expect(claimed.body.registered_at).not.toBe(first.body.registered_at);
		expect((await calls.heartbeat(first.body.id, first.body.token)).status).toBe(401);
		expect((await calls.heartbeat(first.body.id, claimed.body.token)).status).toBe(200);
	});

	test("MAX_AGENTS counts stored agents, offline ones too: a new one is 409; a stored one may come back", async () => {
		for (const name of ["stored-1", "stored-2"]) expect((await calls.registerWithKey(registration(name))).status).toBe(201);
		const listed = (await operator.get("/api/v1/agents")).body;
		expect(listed.total).toBe(3);
		for (const a of listed.agents as Array<{ id: string }>) await offline(a.id);
		const over = await calls.registerWithKey(registration("one-too-many"));
		expect(over.status).toBe(409);
		expect(over.body.error).toMatchObject({ code: "CONFLICT", details: { max_agents: 3 } });
		expect((await operator.post("/api/v1/agents/register", registration("one-too-many"))).status).toBe(409);
		expect((await calls.registerWithKey(registration("stored-1"))).status).toBe(201);
		expect((await operator.get("/api/v1/agents")).body.total).toBe(3);
	});
});

describe("AGENT_RETENTION_HOURS", () => {
	let server: TestServer;
	const calls = agentCalls(() => server);
	// The smallest retention the configuration takes: 0.001 h = 3.6 s.
	beforeAll(async () => (server = await startServer({ HEARTBEAT_TIMEOUT_MS: "200", AGENT_RETENTION_HOURS: "0.001", HEALTH_CHECK_INTERVAL_MS: "60000" })));
	afterAll(() => server?.stop());

	test("an agent offline longer than the retention is removed by itself, and its token with it", async () => {
		const viewer = client(server.url, server.token(["viewer"], "vic"));
		const reg = await calls.registerWithKey(registration("forgotten"));
		await waitFor(async () => (await viewer.get(`/api/v1/agents/${reg.body.id}`)).status === 404, 15_000, 200);
		expect((await viewer.get("/api/v1/agents")).body.total).toBe(0);
		expect((await calls.heartbeat(reg.body.id, reg.body.token)).status).toBe(401);
		const back = await calls.registerWithKey(registration("forgotten"));
		expect(back.status).toBe(201);
		expect(back.body.registered_at).not.toBe(reg.body.registered_at);
	});
});
