/**
 * A real cluster on loopback: two gateway nodes, two core nodes, a private NATS server and Redis,
 * a fresh PostgreSQL database as the shared store. Each failure is a real process kill.
 */
import { randomBytes } from "node:crypto";
import { TEST_SECRETS } from "../support/broker";
import { freePort, startNatsServer, startNode, startRedisServer, type ManagedProcess } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { silent, postJson, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { createTestDatabase } from "../support/postgres";
import { mintToken } from "../../src/platform/tokens";
import { describeWith, MONGODB, POSTGRES } from "../support/services";

jest.setTimeout(120_000);

/** PostgreSQL always (required in CI); MongoDB as well when MONGODB_URI points at a server (skipped without). */
const SHARED_STORES = [
	{ name: "PostgreSQL", needs: POSTGRES, env: async () => { const db = await createTestDatabase(); return { env: { DATABASE_URL: db.url }, drop: () => db.drop() }; } },
	{ name: "MongoDB", needs: MONGODB, env: async () => ({ env: { MONGODB_URI: process.env.MONGODB_URI!.replace(/\/[^/?]*(\?|$)/, `/mcp_cluster_${randomBytes(4).toString("hex")}$1`) }, drop: async () => undefined }) }
];

for (const store of SHARED_STORES) describeWith(store.needs)(`cluster over NATS with a shared ${store.name} store and Redis`, () => {
	let db: { env: Record<string, string>; drop(): Promise<void> };
	let nats: Awaited<ReturnType<typeof startNatsServer>>;
	let redis: Awaited<ReturnType<typeof startRedisServer>>;
	const nodes: Record<string, ManagedProcess> = {};
	const urls: Record<string, string> = {};
	const agents: HttpAgent[] = [];
	let env: Record<string, string>;
	const token = (roles: ("viewer" | "operator" | "admin")[], sub = `cluster-${roles[0]}`) =>
		mintToken(TEST_SECRETS.JWT_SECRET, { sub, roles, expiresInSec: 3600 });

	async function startGateway(name: string, port?: number) {
		const p = port ?? (await freePort());
		nodes[name] = startNode(name, { ...env, SERVICES: "api", SERVER_PORT: String(p) });
		urls[name] = `http://127.0.0.1:${p}`;
		await waitFor(async () => (await request(urls[name], "GET", "/ready").catch(() => ({ status: 0 }))).status === 200, 30_000);
	}

	beforeAll(async () => {
		db = await store.env();
		[nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
		env = {
			...TEST_SECRETS,
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			...db.env,
			NAMESPACE: `cluster-${randomBytes(4).toString("hex")}`,
			NODE_HEARTBEAT_INTERVAL_SEC: "1",
			NODE_HEARTBEAT_TIMEOUT_SEC: "3",
			RATE_LIMIT_PER_MINUTE: "1000",
			HEALTH_CHECK_INTERVAL_MS: "60000"
		};
		const [portA, portB] = [await freePort(), await freePort()];
		// HTTP agents call back through gateway B (the one no test kills), as through a load balancer.
		env.PUBLIC_URL = `http://127.0.0.1:${portB}`;
		// Core nodes first, one after the other (they create the tables), then the gateways.
		nodes.core1 = startNode("core-1", { ...env, SERVICES: "agents,tasks,pipelines,audit,auth" });
		await new Promise(r => setTimeout(r, 3000));
		nodes.core2 = startNode("core-2", { ...env, SERVICES: "agents,tasks,pipelines,audit,auth" });
		await Promise.all([startGateway("gwA", portA), startGateway("gwB", portB)]);
	});

	afterAll(async () => {
		for (const node of Object.values(nodes)) await node.kill();
		for (const a of agents) await a.close();
		await nats?.kill();
		await redis?.kill();
		await db?.drop();
	});

	async function httpAgent(name: string, capabilities: string[], cpu = 4, via = "gwA") {
		const http = await startHttpAgent();
		agents.push(http);
		const res = await client(urls[via], token(["operator"])).post("/api/v1/agents/register", { name, type: "worker", capabilities, endpoints: { task: http.endpoints.task }, resources: { cpu } });
		expect(res.status).toBe(201);
		return { http, agent: res.body };
	}

	const taskVia = (gw: string, id: string) => client(urls[gw], token(["viewer"])).get(`/api/v1/tasks/${id}`).then(r => r.body);

	it("any gateway serves the same cluster: register on A, run a task submitted on B", async () => {
		const { agent } = await httpAgent("cluster-worker", ["cluster-job"]);
		const listedOnB = await client(urls.gwB, token(["viewer"])).get("/api/v1/agents");
		expect(listedOnB.body.agents.map((a: { id: string }) => a.id)).toContain(agent.id);
		const created = await client(urls.gwB, token(["operator"])).post("/api/v1/tasks", { type: "cluster-job" });
		expect(created.status).toBe(201);
		const done = await waitFor(async () => ((await taskVia("gwA", created.body.task_id)).status === "completed" ? taskVia("gwA", created.body.task_id) : undefined), 15_000);
		expect(done.assigned_agent).toBe(agent.id);
	});

	it("many tasks from both gateways are each run exactly once across two core nodes", async () => {
		const { http } = await httpAgent("bulk-worker", ["bulk-job"]);
		const ids: string[] = [];
		for (let i = 0; i < 40; i++) ids.push((await client(urls[i % 2 ? "gwA" : "gwB"], token(["operator"])).post("/api/v1/tasks", { type: "bulk-job", payload: { i } })).body.task_id);
		await waitFor(async () => {
			const res = await client(urls.gwA, token(["viewer"])).get("/api/v1/tasks?status=completed&limit=1000");
			return ids.every(id => res.body.tasks.some((t: { task_id: string }) => t.task_id === id));
		}, 30_000);
		const deliveries = http.deliveries.filter(d => ids.includes(d.task_id));
		expect(deliveries).toHaveLength(40);
		expect(new Set(deliveries.map(d => d.task_id)).size).toBe(40);
	});

	it("rate limits are shared through Redis: a client limited on one gateway is limited on all", async () => {
		const sub = `limited-${randomBytes(3).toString("hex")}`;
		const t = token(["viewer"], sub);
		const limitedEnv = { ...env, RATE_LIMIT_PER_MINUTE: "6" };
		const port1 = await freePort();
		const port2 = await freePort();
		nodes.rl1 = startNode("rl-1", { ...limitedEnv, SERVICES: "api", SERVER_PORT: String(port1) });
		nodes.rl2 = startNode("rl-2", { ...limitedEnv, SERVICES: "api", SERVER_PORT: String(port2) });
		const u1 = `http://127.0.0.1:${port1}`;
		const u2 = `http://127.0.0.1:${port2}`;
		await waitFor(async () => (await request(u1, "GET", "/health").catch(() => ({ status: 0 }))).status === 200 && (await request(u2, "GET", "/health").catch(() => ({ status: 0 }))).status === 200, 30_000);
		const statuses = [];
		for (let i = 0; i < 8; i++) statuses.push((await request(i % 2 ? u1 : u2, "GET", "/api/v1/agents", { token: t })).status);
		expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429]);
		await nodes.rl1.kill();
		await nodes.rl2.kill();
	});

	it("a core node killed with tasks and a pipeline run in flight: the other adopts them and they finish", async () => {
		const { http } = await httpAgent("held-worker", ["held-job", "analysis", "output"], 16);
		http.script = silent;
		const operator = client(urls.gwA, token(["operator"]));
		const ids: string[] = [];
		for (let i = 0; i < 6; i++) ids.push((await operator.post("/api/v1/tasks", { type: "held-job" })).body.task_id);
		const pipeline = await operator.post("/api/v1/pipelines", {
			name: "survives-core-loss",
			stages: [{ name: "analyse", type: "analysis" }, { name: "write", type: "output" }]
		});
		const runs = [];
		for (let i = 0; i < 3; i++) runs.push((await operator.post(`/api/v1/pipelines/${pipeline.body.pipeline_id}/execute`, { input_data: { i } })).body.run_id);
		await waitFor(async () => http.deliveries.filter(d => d.type === "analysis").length === 3, 15_000);
		const stageTasks = http.deliveries.filter(d => d.type === "analysis").map(d => d.task_id);
		ids.push(...stageTasks);
		await waitFor(async () => http.deliveries.filter(d => ids.includes(d.task_id)).length === 9, 15_000);
		await nodes.core1.kill();
		for (const d of http.deliveries.filter(x => ids.includes(x.task_id)))
			await waitFor(async () => (await postJson(d.callbacks.complete, d.callback_token, { result: { by: "survivor" } })) === 200, 20_000);
		for (const id of ids) expect(await taskVia("gwB", id)).toMatchObject({ status: "completed", result: { by: "survivor" } });
		// the runs go on to their second stage and finish
		http.script = d => void postJson(d.callbacks.complete, d.callback_token, { result: { stage: d.type } });
		for (const d of http.deliveries.filter(x => x.type === "output")) await postJson(d.callbacks.complete, d.callback_token, { result: { stage: d.type } });
		const viewer = client(urls.gwB, token(["viewer"]));
		for (const runId of runs) {
			const run = await waitFor(async () => {
				const r = (await viewer.get(`/api/v1/pipelines/${pipeline.body.pipeline_id}/runs/${runId}`)).body;
				return r.status === "completed" ? r : undefined;
			}, 20_000);
			expect(run.completed_stages).toEqual([0, 1]);
		}
		expect(http.deliveries.filter(d => d.type === "output")).toHaveLength(3);
		// and new work still flows
		http.script = d => void postJson(d.callbacks.complete, d.callback_token, { result: "after" });
		const next = await operator.post("/api/v1/tasks", { type: "held-job" });
		await waitFor(async () => (await taskVia("gwB", next.body.task_id)).status === "completed", 15_000);
	});

	it("a gateway killed: the other keeps serving", async () => {
		await nodes.gwA.kill();
		const res = await client(urls.gwB, token(["viewer"])).get("/api/v1/agents");
		expect(res.status).toBe(200);
		expect(res.body.agents.length).toBeGreaterThan(0);
		await startGateway("gwA", Number(new URL(urls.gwA).port));
	});

	it("NATS restarted: nodes reconnect and work resumes", async () => {
		const { http } = await httpAgent("nats-worker", ["after-nats"]);
		await nats.kill();
		nats = await startNatsServer(nats.port);
		const created = await waitFor(async () => {
			const res = await client(urls.gwB, token(["operator"])).post("/api/v1/tasks", { type: "after-nats" });
			return res.status === 201 ? res.body : undefined;
		}, 30_000, 500);
		await waitFor(async () => (await taskVia("gwB", created.task_id)).status === "completed", 30_000, 200);
		expect(http.deliveries.some(d => d.task_id === created.task_id)).toBe(true);
	});

	it("Redis down: the API keeps serving (per-node limits) and /ready names redis", async () => {
		await redis.kill();
		const res = await client(urls.gwB, token(["viewer"])).get("/api/v1/agents");
		expect(res.status).toBe(200);
		const ready = await waitFor(async () => {
			const r = await request(urls.gwB, "GET", "/ready");
			return r.status === 503 ? r : undefined;
		}, 15_000);
		expect(ready.body.checks.redis).not.toBe("ok");
		expect(ready.body.checks.store).toBe("ok");
		redis = await startRedisServer(redis.port);
		await waitFor(async () => (await request(urls.gwB, "GET", "/ready")).status === 200, 20_000);
	});
});
