/**
 * A real cluster on loopback: two gateway nodes, two core nodes, a private NATS server and Redis,
 * a fresh PostgreSQL database as the shared store. Each failure is a real process kill.
 * Then the same cluster over each transporter TRANSPORTER may name (NATS, RabbitMQ, Redis), every
 * node role on it: a full node, a gateway-only node, a core-only node, agent nodes, the REPL.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startAgentNode as startAgentInProcess, type AgentNode } from "../support/agent-node";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { ensureBuilt, freePort, startAgentNode, startNatsServer, startNode, startRedisServer, startRepl, startTcpProxy, type ManagedProcess } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { silent, postJson, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { createTestDatabase } from "../support/postgres";
import { mintToken } from "../../src/platform/tokens";
import { describeWith, MONGODB, NATS, POSTGRES, RABBITMQ, REDIS, type Service } from "../support/services";

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

/**
 * The machine's servers, each test run in a namespace of its own: Moleculer prefixes every subject,
 * queue, exchange and channel with it (`MOL-<namespace>.…`), so runs side by side never meet.
 */
const TRANSPORTERS: { name: string; server: Service; url: (port: number) => string }[] = [
	{ name: "NATS", server: NATS, url: port => `nats://127.0.0.1:${port}` },
	{ name: "RabbitMQ", server: RABBITMQ, url: port => `amqp://guest:guest@127.0.0.1:${port}` },
	{ name: "Redis", server: REDIS, url: port => `redis://127.0.0.1:${port}` }
];

const SIX_STAGES = {
	name: "six-stages",
	stages: [
		{ name: "ingest", type: "data-ingestion" },
		{ name: "transform", type: "transformation" },
		{ name: "analyse", type: "analysis" },
		{ name: "validate", type: "validation" },
		{ name: "process", type: "processing", parameters: { group_by: ["region"] } },
		{ name: "output", type: "output" }
	],
	dependencies: [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 3 }, { from: 3, to: 4 }, { from: 4, to: 5 }]
};

for (const transporter of TRANSPORTERS)
	describeWith(POSTGRES, transporter.server)(`every node role over ${transporter.name} (${transporter.url(transporter.server.port).replace(/\/\/[^@/]*@/, "//…@")}, through a proxy)`, () => {
		let db: Awaited<ReturnType<typeof createTestDatabase>>;
		let env: Record<string, string>;
		/** What an agent node gets: the cluster's API key and the bus, never JWT_SECRET. */
		let agentEnv: Record<string, string>;
		let dataRoot: string;
		/** Every node reaches the server through it, so a test can take the server away from this cluster alone. */
		let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
		const nodes: Record<string, ManagedProcess> = {};
		const inProcess: AgentNode[] = [];
		const urls: Record<"full" | "gateway", string> = { full: "", gateway: "" };
		const token = (roles: ("viewer" | "operator")[]) => mintToken(TEST_SECRETS.JWT_SECRET, { sub: `roles-${roles[0]}`, roles, expiresInSec: 3600 });
		const viewer = () => client(urls.gateway, token(["viewer"]));
		const taskOf = async (id: string) => (await viewer().get(`/api/v1/tasks/${id}`)).body;
		const agentNamed = async (name: string) => ((await viewer().get("/api/v1/agents")).body.agents as { id: string; name: string; status: string }[]).find(a => a.name === name && a.status === "active");
		const ready = async (url: string) => (await request(url, "GET", "/ready").catch(() => ({ status: 0, body: undefined }))) as { status: number; body: { checks: Record<string, string> } };
		const tail = (p: ManagedProcess) => p.output.join("").slice(-3000);

		async function agentInProcess(name: string, capabilities: string[], options: Parameters<typeof startAgentInProcess>[3] = {}) {
			const node = await startAgentInProcess(name, capabilities, agentEnv, options);
			inProcess.push(node);
			await waitFor(() => agentNamed(name), 20_000);
			return node;
		}

		beforeAll(async () => {
			ensureBuilt();
			db = await createTestDatabase();
			dataRoot = path.join(tempDir("roles-agent-"), "agent-data");
			proxy = await startTcpProxy(transporter.server);
			const bus = { TRANSPORTER: transporter.url(proxy.port), NAMESPACE: `roles-${transporter.name.toLowerCase()}-${randomBytes(4).toString("hex")}`, NODE_HEARTBEAT_INTERVAL_SEC: "1", NODE_HEARTBEAT_TIMEOUT_SEC: "3" };
			agentEnv = { ...bus, API_KEY: TEST_SECRETS.API_KEY };
			env = { ...TEST_SECRETS, ...bus, DATABASE_URL: db.url, RATE_LIMIT_PER_MINUTE: "1000", HEALTH_CHECK_INTERVAL_MS: "60000" };
			const [fullPort, gatewayPort] = [await freePort(), await freePort()];
			urls.full = `http://127.0.0.1:${fullPort}`;
			urls.gateway = `http://127.0.0.1:${gatewayPort}`;
			// The core-only node first (it creates the tables), then a full node and a gateway-only node.
			nodes.core = startNode("roles-core", { ...env, SERVICES: "agents,tasks,pipelines,audit,auth" });
			await new Promise(r => setTimeout(r, 3000));
			nodes.full = startNode("roles-full", { ...env, SERVER_PORT: String(fullPort) });
			nodes.gateway = startNode("roles-gateway", { ...env, SERVICES: "api", SERVER_PORT: String(gatewayPort) });
			try {
				await waitFor(async () => (await ready(urls.full)).status === 200 && (await ready(urls.gateway)).status === 200, 40_000, 200);
			} catch (err) {
				throw new Error(`${(err as Error).message}\ncore:\n${tail(nodes.core)}\nfull:\n${tail(nodes.full)}\ngateway:\n${tail(nodes.gateway)}`);
			}
		});

		afterAll(async () => {
			for (const node of Object.values(nodes)) await node.kill();
			for (const agent of inProcess) await agent.broker.stop().catch(() => undefined);
			await proxy?.close();
			await db?.drop();
			if (dataRoot) fs.rmSync(path.dirname(dataRoot), { recursive: true, force: true });
		});

		it("both gateways are ready with the transporter checked, and the REPL joins and lists the cluster's agents", async () => {
			for (const url of [urls.full, urls.gateway]) expect((await ready(url)).body.checks).toEqual({ services: "ok", store: "ok", transporter: "ok" });
			await agentInProcess("roles-listed", ["listed-job"]);
			const repl = startRepl("roles-repl", { ...TEST_SECRETS, TRANSPORTER: env.TRANSPORTER, NAMESPACE: env.NAMESPACE, DATA_DIR: tempDir("roles-repl-") }, ["agents"]);
			nodes.repl = repl;
			expect(await repl.exited).toBe(0);
			const out = repl.stdout.join("").replace(/\x1b\[[0-9;]*m/g, "");
			expect(out).toContain(` joined ${env.TRANSPORTER.replace(/\/\/[^@/]*@/, "//…@")} (namespace ${env.NAMESPACE})`);
			expect(out).not.toContain("guest:guest");
			expect(out).toMatch(/agent-\S+\s+roles-listed\s+worker\s+active/);
		});

		it("tasks submitted on both gateways are each run exactly once", async () => {
			const agent = await agentInProcess("roles-bulk", ["roles-bulk-job"], { concurrency: 4 });
			const ids: string[] = [];
			for (let i = 0; i < 30; i++) {
				const created = await client(i % 2 ? urls.full : urls.gateway, token(["operator"])).post("/api/v1/tasks", { type: "roles-bulk-job", payload: { i } });
				expect(created.status).toBe(201);
				ids.push(created.body.task_id);
			}
			await waitFor(async () => {
				const done = (await viewer().get("/api/v1/tasks?status=completed&type=roles-bulk-job&limit=1000")).body.tasks as { task_id: string }[];
				return ids.every(id => done.some(t => t.task_id === id));
			}, 40_000, 200);
			expect(agent.handled.map(t => t.task_id).sort()).toEqual([...ids].sort());
			for (const id of ids.slice(0, 3)) expect(await taskOf(id)).toMatchObject({ status: "completed", attempt: 1, result: { ok: true } });
		});

		it("an agent node runs as many tasks at once as it has slots, not one after another", async () => {
			let release!: () => void;
			const gate = new Promise<void>(resolve => (release = resolve));
			const agent = await agentInProcess("roles-parallel", ["roles-parallel-job"], { concurrency: 3, handle: () => gate.then(() => ({ ok: true })) });
			const operator = client(urls.gateway, token(["operator"]));
			const ids: string[] = [];
			for (let i = 0; i < 3; i++) ids.push((await operator.post("/api/v1/tasks", { type: "roles-parallel-job" })).body.task_id);
			// All three in the agent's hands together; with a transporter that delivered one request at a time, the second would wait for the first.
			await waitFor(async () => agent.handled.length === 3, 15_000).catch(() => {
				throw new Error(`the agent held ${agent.handled.length} of 3 tasks at once`);
			});
			release();
			for (const id of ids) await waitFor(async () => (await taskOf(id)).status === "completed", 15_000);
		});

		it("the six-stage pipeline runs on a reference agent node (`npm run agent`)", async () => {
			nodes.reference = startAgentNode(`roles-reference-${randomBytes(2).toString("hex")}`, {
				...agentEnv,
				AGENT_NAME: "roles-reference",
				AGENT_CAPABILITIES: "data-ingestion,transformation,analysis,validation,processing,output",
				AGENT_DATA_ROOT: dataRoot
			});
			const reference = await waitFor(() => agentNamed("roles-reference"), 30_000).catch(err => {
				throw new Error(`${(err as Error).message}\n${tail(nodes.reference)}`);
			});
			const operator = client(urls.full, token(["operator"]));
			const pipeline = await operator.post("/api/v1/pipelines", SIX_STAGES);
			expect(pipeline.status).toBe(201);
			const started = await operator.post(`/api/v1/pipelines/${pipeline.body.pipeline_id}/execute`, {
				input_data: { source: "sample.csv", format: "csv", output: "runs/roles/report.json" },
				parameters: { delimiter: "," }
			});
			expect(started.status).toBe(202);
			const run = await waitFor(async () => {
				const body = (await viewer().get(`/api/v1/pipelines/${pipeline.body.pipeline_id}/runs/${started.body.run_id}`)).body;
				return ["completed", "failed", "cancelled"].includes(body.status) ? body : undefined;
			}, 60_000, 200);
			expect(run.status).toBe("completed");
			expect(run.completed_stages).toEqual([0, 1, 2, 3, 4, 5]);
			for (const stage of run.stages as { task_id: string }[]) expect((await taskOf(stage.task_id)).assigned_agent).toBe(reference.id);
			const report = JSON.parse(fs.readFileSync(path.join(dataRoot, "runs/roles/report.json"), "utf8"));
			expect(JSON.stringify(report)).toMatch(/North|South|East|West/);
		});

		it("an agent node killed (kill -9) mid-task: it goes offline and its task is re-queued and finishes on another agent", async () => {
			const doomedName = `roles-doomed-${randomBytes(2).toString("hex")}`;
			nodes.doomed = startAgentNode(doomedName, { ...agentEnv, AGENT_NAME: "roles-doomed", AGENT_CAPABILITIES: "roles-handover-job" }, "test/support/slow-agent-node.js");
			const doomed = await waitFor(() => agentNamed("roles-doomed"), 30_000);
			const created = await client(urls.full, token(["operator"])).post("/api/v1/tasks", { type: "roles-handover-job" });
			// In the agent's hands (it says so on stdout), not merely claimed for it: a delivery to a node not yet discovered is re-queued.
			await waitFor(async () => nodes.doomed.stdout.join("").includes(`"took":"${created.body.task_id}"`), 20_000);
			const held = await taskOf(created.body.task_id);
			expect(held).toMatchObject({ status: "running", assigned_agent: doomed.id });
			const rescuer = await agentInProcess("roles-rescuer", ["roles-handover-job"], { handle: async () => ({ rescued: true }) });

			await nodes.doomed.kill("SIGKILL");
			const done = await waitFor(async () => {
				const t = await taskOf(created.body.task_id);
				return t.status === "completed" ? t : undefined;
			}, 30_000, 200);
			expect(done).toMatchObject({ result: { rescued: true }, attempt: held.attempt + 1 });
			expect(done.logs.map((l: { message: string }) => l.message).join("\n")).toMatch(new RegExp(`Agent ${doomed.id} .*; re-queued after attempt ${held.attempt}`));
			expect(rescuer.handled.map(t => t.task_id)).toEqual([created.body.task_id]);
			expect((await viewer().get(`/api/v1/agents/${doomed.id}`)).body.status).toBe("offline");
		});

		it("the transporter's server stalled, then gone, then back: both gateways say so on /ready, and work resumes", async () => {
			const both = [urls.full, urls.gateway];
			const notReady = (url: string) => waitFor(async () => {
				const r = await ready(url);
				return r.status === 503 ? r.body.checks : undefined;
			}, 15_000, 200);
			const allReady = () => waitFor(async () => (await Promise.all(both.map(ready))).every(r => r.status === 200), 60_000, 250);
			// Stalled: every connection still open, nothing moves. Only a round trip to the server tells.
			proxy.stall();
			for (const url of both) expect((await notReady(url)).transporter).toMatch(/^transporter unreachable/);
			await proxy.restore();
			await allReady();
			// Gone: connections dropped, new ones refused.
			await proxy.cut();
			for (const url of both) expect((await notReady(url)).transporter).toMatch(/^transporter (unreachable|disconnected)/);
			await proxy.restore();
			await allReady();
			// Every node reconnected: an agent node back as active takes a task submitted on the gateway-only node.
			const agent = inProcess.find(a => a.nodeID.startsWith("roles-bulk-"))!;
			await waitFor(() => agentNamed("roles-bulk"), 30_000);
			const created = await client(urls.gateway, token(["operator"])).post("/api/v1/tasks", { type: "roles-bulk-job", payload: { after: "outage" } });
			expect(created.status).toBe(201);
			await waitFor(async () => (await taskOf(created.body.task_id)).status === "completed", 30_000, 200);
			expect(agent.handled.filter(t => t.task_id === created.body.task_id)).toHaveLength(1);
		});
	});
