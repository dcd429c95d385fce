/**
 * A process on the transporter without our secrets gets nothing. A real server (every service) on
 * the real NATS, in a namespace of this file's own, and ROGUE brokers joined to it: plain
 * `new ServiceBroker({ transporter, namespace, nodeID })`, not our broker options, so no trust
 * middleware and no JWT_SECRET, as any process that reached the bus could be.
 *
 * Before the trust work every service took `ctx.meta.user` from the wire, took any node's events,
 * routed calls to any node announcing a service's name and sent its events (and the system token
 * they carry) to any node listening: each test below would have failed then.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { io as ioClient, type Socket as IoClientSocket } from "socket.io-client";
import { agentIdFor } from "../../services/agents.service";
import { stageTaskId } from "../../src/runtime/ids";
import type { ClusterMessage } from "../../src/types";
import { startAgentNode } from "../support/agent-node";
import { TEST_SECRETS } from "../support/broker";
import { ensureBuilt } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { silent, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { jwtsIn, quietPeriod, recordingService, startRogue, type Received, type Rogue } from "../support/rogue";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const ROOT = path.resolve(__dirname, "../..");
const BUS = `nats://${NATS.host}:${NATS.port}`;
const hex = () => randomBytes(4).toString("hex");

/** What a viewer's socket.io client is sent. */
const EVENT_TYPES = ["task_update", "agent_update", "pipeline_progress", "error"] as const;

/** An HTTP server that records every request it gets (a delivery, a health poll, anything). */
async function startBait(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
	const hits: string[] = [];
	const server = http.createServer((req, res) => {
		hits.push(`${req.method} ${req.url}`);
		res.end("ok");
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return { url, hits, close: () => new Promise(resolve => server.close(() => resolve())) };
}

/** Packets the rogue's NATS connection has written are at the server (NATS keeps one connection's order). */
async function flushed(rogue: Rogue): Promise<void> {
	await (rogue.broker.transit as unknown as { tx: { client: { flush(): Promise<void> } } }).tx.client.flush();
}

describeWith(NATS)("a rogue Moleculer node on the transporter, without our secrets", () => {
	const namespace = `rogue-${hex()}`;
	const serverNode = `srv-${hex()}`;
	const busToken = `bus-token-${hex()}`;
	const metricsToken = `metrics-token-${hex()}`;
	let server: TestServer;
	let rogue: Rogue;
	let viewer: ReturnType<typeof client>;
	let operator: ReturnType<typeof client>;
	let admin: ReturnType<typeof client>;
	let victimHttp: HttpAgent;
	let victim: { id: string; token: string; endpoints: Record<string, string> };
	let bystander: ServiceBroker;
	let bystanderId: string;
	let refAgent: ChildProcess;
	let refOutput = "";
	let dataRoot: string;
	let taskId: string;
	let pipelineId: string;
	let runId: string;
	let stageTask: Record<string, unknown>;
	let socket: IoClientSocket;
	const realtime: ClusterMessage[] = [];
	const brokers: ServiceBroker[] = [];
	const closers: Array<() => Promise<unknown>> = [];

	const env = {
		TRANSPORTER: BUS,
		NAMESPACE: namespace,
		NODE_ID: serverNode,
		// NATS on 4222 asks for no credentials and ignores these; they are here to be looked for in what the rogue gets.
		TRANSPORTER_TOKEN: busToken,
		METRICS_TOKEN: metricsToken,
		NODE_HEARTBEAT_INTERVAL_SEC: "1",
		NODE_HEARTBEAT_TIMEOUT_SEC: "5",
		// The HTTP victim sends no heartbeats: it must stay active for the whole file.
		HEARTBEAT_TIMEOUT_MS: "120000"
	};

	const agentNamed = (name: string) => waitFor(async () => (await viewer.get("/api/v1/agents?limit=1000")).body.agents.find((a: { name: string; status: string }) => a.name === name && a.status === "active"), 20_000);

	beforeAll(async () => {
		ensureBuilt();
		// The reference agent node from dist/, as production runs it: API_KEY and no JWT_SECRET in its environment.
		dataRoot = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rogue-agent-root-")), "agent-data");
		fs.mkdirSync(dataRoot, { recursive: true, mode: 0o700 });
		fs.writeFileSync(path.join(dataRoot, "secret.csv"), "name,password\nalice,hunter2-rogue-must-never-read\n");
		const { JWT_SECRET: _no, ...inherited } = process.env;
		refAgent = spawn(process.execPath, ["dist/agents/agent-node.js"], {
			cwd: ROOT,
			env: {
				...inherited, NODE_ENV: "production", API_KEY: TEST_SECRETS.API_KEY, TRANSPORTER: BUS, NAMESPACE: namespace, NODE_ID: `ref-${hex()}`,
				AGENT_NAME: "ref-secure", AGENT_CAPABILITIES: "data-ingestion", AGENT_DATA_ROOT: dataRoot, LOG_LEVEL: "warn",
				NODE_HEARTBEAT_INTERVAL_SEC: "1", NODE_HEARTBEAT_TIMEOUT_SEC: "5"
			},
			stdio: ["ignore", "ignore", "pipe"]
		});
		refAgent.stderr!.on("data", (chunk: Buffer) => (refOutput = (refOutput + chunk.toString()).slice(-4000)));

		server = await startServer(env);
		viewer = client(server.url, server.token(["viewer"], "vera"));
		operator = client(server.url, server.token(["operator"], "otto"));
		admin = client(server.url, server.token(["admin"], "ada"));

		// A live HTTP agent that keeps what it is given (a running task, a running stage).
		victimHttp = await startHttpAgent();
		victimHttp.script = silent;
		closers.push(() => victimHttp.close());
		const registered = await request(server.url, "POST", "/api/v1/agents/register", {
			body: { name: "victim-http", type: "worker", capabilities: ["victim-cap", "analysis"], resources: { cpu: 4 }, endpoints: victimHttp.endpoints },
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		expect(registered.status).toBe(201);
		victim = registered.body;

		taskId = (await operator.post("/api/v1/tasks", { type: "victim-cap", payload: { n: 1 } })).body.task_id;
		const created = await operator.post("/api/v1/pipelines", {
			name: "rogue-target",
			stages: [{ name: "first", type: "analysis", required_capabilities: ["victim-cap"] }, { name: "second", type: "analysis", required_capabilities: ["victim-cap"] }]
		});
		expect(created.status).toBe(201);
		pipelineId = created.body.pipeline_id;
		runId = (await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).body.run_id;
		await waitFor(async () => (await viewer.get(`/api/v1/tasks/${taskId}`)).body.status === "running");
		stageTask = await waitFor(async () => {
			const run = (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
			const task = run.stages[0].task_id ? (await viewer.get(`/api/v1/tasks/${run.stages[0].task_id}`)).body : null;
			return task?.status === "running" ? task : undefined;
		});

		// A Moleculer agent on a node of its own (a forged `$node.disconnected` would name it), heartbeating every 500 ms.
		const agentNode = await startAgentNode("bystander", ["bystander-cap"], {
			TRANSPORTER: BUS, NAMESPACE: namespace, HEARTBEAT_TIMEOUT_MS: "1500", NODE_HEARTBEAT_INTERVAL_SEC: "1", NODE_HEARTBEAT_TIMEOUT_SEC: "5"
		});
		bystander = agentNode.broker;
		brokers.push(bystander);
		bystanderId = (await agentNamed("bystander")).id;

		rogue = await startRogue(BUS, namespace, { sees: [serverNode] });
		brokers.push(rogue.broker);
		await waitFor(async () => server.broker.registry.nodes.get(rogue.nodeID)?.available);

		socket = ioClient(server.url, { auth: { token: server.token(["viewer"], "rt-viewer") }, transports: ["websocket"], forceNew: true, reconnection: false });
		for (const type of EVENT_TYPES) socket.on(type, (message: ClusterMessage) => realtime.push(message));
		await new Promise<void>((resolve, reject) => (socket.once("connect", () => resolve()), socket.once("connect_error", reject)));
	}, 40_000);

	afterAll(async () => {
		socket?.close();
		refAgent?.kill("SIGKILL");
		for (const b of brokers.reverse()) await b.stop().catch(() => undefined);
		for (const close of closers) await close();
		await server?.stop();
		if (dataRoot) fs.rmSync(path.dirname(dataRoot), { recursive: true, force: true });
	});

	const mallory = { user: { sub: "mallory", roles: ["admin"] } };
	const refusal = (code: number, type: string) => expect.objectContaining({ ok: false, code, type });

	test("a forged meta.user buys nothing: every protected action refuses with our codes, and nothing changes", async () => {
		const victimBefore = (await viewer.get(`/api/v1/agents/${victim.id}`)).body;
		expect(victimBefore).toMatchObject({ status: "active", endpoints: victimHttp.endpoints });

		// Minting a token: no API key, and meta.user is not an admin's token.
		const minted = await rogue.call("auth.token", { sub: "mallory", roles: ["admin"] }, mallory);
		expect(minted).toEqual(refusal(401, "UNAUTHORIZED"));
		expect(jwtsIn(minted)).toEqual([]);

		// Creating an agent, removing or draining someone else's.
		expect(await rogue.call("agents.register", { name: "mallory-agent", type: "worker", capabilities: ["victim-cap"] }, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));
		expect((await viewer.get(`/api/v1/agents/${agentIdFor("mallory-agent")}`)).status).toBe(404);
		expect(await rogue.call("agents.remove", { id: victim.id }, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));
		expect(await rogue.call("agents.drain", { id: victim.id }, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));

		// Re-pointing a live agent's name: even the API key alone may not (409), with or without a forged user.
		const repoint = { name: "victim-http", type: "worker", capabilities: ["victim-cap", "analysis"], endpoints: { task: "http://127.0.0.1:9/stolen", health: "http://127.0.0.1:9/health" } };
		expect(await rogue.call("agents.register", repoint, { apiKey: TEST_SECRETS.API_KEY })).toEqual(refusal(409, "CONFLICT"));
		expect(await rogue.call("agents.register", repoint, { ...mallory, apiKey: TEST_SECRETS.API_KEY })).toEqual(refusal(409, "CONFLICT"));

		// Finishing a task assigned to another agent, as "admin" and as that agent's forged principal.
		const forgedAgent = { user: { sub: `agent:${victim.id}`, roles: ["agent"], agent_id: victim.id } };
		for (const meta of [mallory, forgedAgent]) {
			expect(await rogue.call("tasks.complete", { id: taskId, result: { forged: true } }, meta)).toEqual(refusal(401, "UNAUTHORIZED"));
			expect(await rogue.call("tasks.fail", { id: taskId, error: "forged", retryable: false }, meta)).toEqual(refusal(401, "UNAUTHORIZED"));
		}

		// Reading the audit log; steering a run; naming an engine's stage task id.
		expect(await rogue.call("audit.list", {}, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));
		for (const action of ["pipelines.cancelRun", "pipelines.retryRun"])
			expect(await rogue.call(action, { id: pipelineId, run_id: runId }, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));
		expect(await rogue.call("pipelines.execute", { id: pipelineId }, mallory)).toEqual(refusal(401, "UNAUTHORIZED"));
		const engineId = stageTaskId(runId, 1, 1);
		expect(await rogue.call("tasks.create", { type: "victim-cap", pipeline_id: pipelineId, run_id: runId, stage: 1 }, { ...mallory, taskId: engineId })).toEqual(refusal(401, "UNAUTHORIZED"));
		// The API key is no operator, and no engine either.
		expect(await rogue.call("tasks.create", { type: "victim-cap" }, { apiKey: TEST_SECRETS.API_KEY, taskId: engineId })).toEqual(refusal(403, "FORBIDDEN"));

		// Moleculer's own `$node` actions and the gateway's scrape: not for other nodes either.
		for (const action of ["$node.options", "$node.health", "$node.metrics", "$node.list", "api.metrics"]) {
			const answer = await rogue.call(action, {}, mallory, serverNode);
			expect(answer).toEqual(refusal(403, "FORBIDDEN"));
			expect(JSON.stringify(answer)).not.toContain(busToken);
		}

		// Read back through REST: nothing moved.
		const victimAfter = (await viewer.get(`/api/v1/agents/${victim.id}`)).body;
		expect(victimAfter).toMatchObject({ status: "active", endpoints: victimHttp.endpoints, registered_at: victimBefore.registered_at });
		expect((await viewer.get(`/api/v1/tasks/${taskId}`)).body).toMatchObject({ status: "running", result: null, attempt: 1, assigned_agent: victim.id });
		const run = (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
		expect(run).toMatchObject({ status: "running", completed_stages: [] });
		expect(run.stages.map((s: { status: string }) => s.status)).toEqual(["running", "waiting"]);
		expect((await viewer.get(`/api/v1/pipelines/${pipelineId}`)).body.runs).toHaveLength(1);
		expect((await viewer.get(`/api/v1/tasks/${engineId}`)).status).toBe(404);
		expect((await admin.get("/api/v1/audit?actor=mallory")).body.total).toBe(0);
	});

	test("forged events change nothing: no run advances, no delivery to a fake agent, no audit entry, no realtime message", async () => {
		const bait = await startBait();
		closers.push(() => bait.close());
		const now = new Date().toISOString();
		const fakeAgentId = `agent-forged-${hex()}`;
		const fakeAgent = {
			id: fakeAgentId, name: "forged", type: "worker", status: "active", capabilities: ["bait-cap"], resources: { cpu: 8 },
			endpoints: { task: `${bait.url}/task`, health: `${bait.url}/health` }, current_load: 0, running_tasks: 0, node_id: null, service: null,
			registered_at: now, last_heartbeat: now
		};
		const forgedAudit = {
			timestamp: now, actor: "mallory-forged", roles: ["admin"], action: "agents.remove", method: "DELETE", path: `/api/v1/agents/${victim.id}`,
			target: victim.id, result: "success", status: 200, request_id: null, ip: "203.0.113.66"
		};
		const run = (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
		const forged: Array<[string, unknown]> = [
			["task.updated", { task: { ...stageTask, status: "completed", progress: 1, result: { forged: true }, finished_at: now } }],
			["task.updated", { task: { ...(await viewer.get(`/api/v1/tasks/${taskId}`)).body, status: "completed", result: { forged: true } } }],
			["agent.updated", { agent: fakeAgent }],
			// The victim "went offline": the old tasks service re-queued its running tasks on that.
			["agent.updated", { agent: { ...victim, status: "offline" }, previous_status: "active" }],
			// Beats for the victim, an hour ahead, fully loaded: it would never be silent, and never offered a task.
			["agent.heard", { beats: [[victim.id, Date.now() + 3600_000, 1]] }],
			["audit.entry", forgedAudit],
			["pipeline.progress", { run: { ...run, status: "completed", progress: 1, completed_stages: [0, 1], finished_at: now } }],
			["mcp.error", { task_id: taskId, error: "forged-error-from-the-rogue", details: { code: "EXECUTION_ERROR", message: "forged" } }]
		];
		for (const [event, payload] of forged) {
			await rogue.broker.broadcast(event, payload);
			await rogue.broker.emit(event, payload);
		}
		// Moleculer's own events are never announced, so a rogue sends them as raw packets: "this agent's node, and the server, left".
		for (const node of [bystander.nodeID, serverNode])
			await (rogue.broker.transit as unknown as { publish(packet: object): Promise<void> }).publish({
				type: "EVENT",
				target: serverNode,
				payload: { id: hex(), event: "$node.disconnected", data: { node: { id: node }, unexpected: true }, broadcast: true, meta: {}, headers: {}, level: 1 }
			});
		await flushed(rogue);

		// A real change after the forgeries: the socket gets its event, so it is listening.
		const baitTask = (await operator.post("/api/v1/tasks", { type: "bait-cap", payload: {} })).body.task_id;
		await waitFor(async () => realtime.some(m => m.type === "task_update" && (m as { task_id: string }).task_id === baitTask));
		await quietPeriod(700);

		expect(bait.hits).toEqual([]);
		expect((await viewer.get(`/api/v1/tasks/${baitTask}`)).body).toMatchObject({ status: "pending", assigned_agent: null });
		expect((await viewer.get(`/api/v1/agents/${fakeAgentId}`)).status).toBe(404);
		const victimNow = (await viewer.get(`/api/v1/agents/${victim.id}`)).body;
		expect(victimNow.status).toBe("active");
		expect(victimNow.current_load).not.toBe(1);
		expect(Date.parse(victimNow.last_heartbeat)).toBeLessThanOrEqual(Date.now());
		expect((await viewer.get(`/api/v1/agents/${bystanderId}`)).body.status).toBe("active");
		expect((await viewer.get(`/api/v1/tasks/${taskId}`)).body).toMatchObject({ status: "running", attempt: 1, result: null });
		expect((await viewer.get(`/api/v1/tasks/${stageTask.task_id}`)).body).toMatchObject({ status: "running", attempt: 1, result: null });
		const after = (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
		expect(after).toMatchObject({ status: "running", completed_stages: [] });
		expect(after.stages.map((s: { status: string }) => s.status)).toEqual(["running", "waiting"]);
		expect((await admin.get("/api/v1/audit?actor=mallory-forged")).body.total).toBe(0);

		const seen = JSON.stringify(realtime);
		expect(seen).not.toContain(fakeAgentId);
		expect(seen).not.toContain("forged-error-from-the-rogue");
		expect(realtime.filter(m => m.type === "pipeline_progress" && (m as { status: string }).status === "completed")).toEqual([]);
		expect(realtime.filter(m => m.type === "task_update" && (m as { status: string }).status === "completed")).toEqual([]);
		expect(realtime.filter(m => m.type === "agent_update" && (m as { status: string }).status === "offline")).toEqual([]);
	});

	describe("impersonating our services", () => {
		const gatewayNode = `gw-${hex()}`;
		let gateway: TestServer;
		let impostor: Rogue;
		const received: Received[] = [];
		/** What the impostor hears of an event that is not one of ours (it may listen to those). */
		const probed: Received[] = [];

		beforeAll(async () => {
			// A gateway of its own: every call and audit entry of its REST traffic goes over NATS, to whoever offers the service.
			gateway = await startServer({ ...env, NODE_ID: gatewayNode }, ["api"]);
			impostor = await startRogue(BUS, namespace, {
				sees: [serverNode, gatewayNode],
				services: [
					recordingService("agents", received, { actions: ["register", "heartbeat", "list", "get", "remove", "drain"], events: ["agent.updated"] }),
					recordingService("auth", received, { actions: ["token"] }),
					recordingService("audit", received, { actions: ["list"], events: [{ name: "audit.entry", group: "audit" }] }),
					// Our names from a service of another name, and listeners of our events (a wildcard too).
					recordingService("helper", received, {
						settings: { $noServiceNamePrefix: true },
						actions: ["agents.register", "agents.heartbeat", "auth.token", "tasks.create"],
						events: [{ name: "audit.entry", group: "audit" }, "task.updated", "**"]
					}),
					recordingService("listener", probed, { events: ["rogue.probe"] })
				]
			});
			brokers.push(impostor.broker);
			for (const broker of [gateway.broker, server.broker, bystander])
				await waitFor(async () => broker.registry.nodes.get(impostor.nodeID)?.available && broker.registry.getServiceList({}).some(s => s.name === "helper" && s.nodeID === impostor.nodeID));
		}, 30_000);
		afterAll(async () => {
			await impostor?.stop();
			await gateway?.stop();
		});

		test("the impostor is never routed anything: no params, no meta, no tokens, no API key; the real audit service stores every entry", async () => {
			// The nodes took its announcement, and kept none of our names from it.
			for (const broker of [gateway.broker, bystander]) {
				for (const action of ["agents.register", "agents.heartbeat", "auth.token", "tasks.create"])
					expect(broker.registry.getActionEndpoints(action)?.endpoints.map(e => e.node.id) ?? []).not.toContain(impostor.nodeID);
				for (const event of ["audit.entry", "task.updated", "agent.updated"])
					expect(broker.registry.events.getAllEndpoints(event).map(e => e.id)).not.toContain(impostor.nodeID);
			}

			const gw = (token?: string) => client(gateway.url, token);
			const started = new Date().toISOString();
			const requests: Array<Promise<{ status: number }>> = [];
			for (let i = 0; i < 4; i++) {
				requests.push(request(gateway.url, "POST", "/api/v1/agents/register", { body: { name: `imp-target-${i}`, type: "worker", capabilities: ["nothing"] }, headers: { "X-API-Key": TEST_SECRETS.API_KEY } }));
				requests.push(gw().post("/api/v1/auth/token", { api_key: TEST_SECRETS.API_KEY, sub: `imp-user-${i}`, roles: ["operator"] }));
				requests.push(gw(server.token(["operator"], `imp-op-${i}`)).post("/api/v1/tasks", { type: "nothing-takes-this", payload: { i } }));
			}
			const answers = await Promise.all(requests);
			expect(answers.map(a => a.status).sort()).toEqual([...Array(4).fill(200), ...Array(8).fill(201)].sort());
			await gw(server.token(["operator"], "imp-op-remove")).delete(`/api/v1/agents/${agentIdFor("imp-target-0")}`);

			// The agent node's heartbeats (its agent token) go on meanwhile: two more after the impostor joined.
			const beat = async () => (await viewer.get(`/api/v1/agents/${bystanderId}`)).body.last_heartbeat as string;
			const first = await beat();
			const second = await waitFor(async () => { const b = await beat(); return b > first ? b : undefined; });
			await waitFor(async () => (await beat()) > second);

			// Every audited call is in the real store (the 12 above and the removal), and nothing else came since.
			const audit = await waitFor(async () => {
				const list = (await admin.get(`/api/v1/audit?since=${encodeURIComponent(started)}&limit=1000`)).body;
				return list.total >= 13 ? list : undefined;
			});
			const calls = audit.entries.map((e: { method: string; path: string }) => `${e.method} ${e.path}`).sort();
			expect(calls).toEqual([
				`DELETE /api/v1/agents/${agentIdFor("imp-target-0")}`,
				...Array(4).fill("POST /api/v1/agents/register"),
				...Array(4).fill("POST /api/v1/auth/token"),
				...Array(4).fill("POST /api/v1/tasks")
			].sort());
			expect(received).toEqual([]);

			// An event that is not one of ours does reach it, and without the system token every event of a trusted node carries.
			await server.broker.broadcast("rogue.probe", { hello: "impostor" });
			await waitFor(async () => probed.length > 0);
			expect(probed[0].params).toEqual({ hello: "impostor" });
			expect((probed[0].meta as { token?: string }).token).toBeUndefined();
			expect(jwtsIn(probed)).toEqual([]);
		});
	});

	test("a compromised agent node (API key in hand) gets no credential of ours with its tasks, and its agent token is no operator", async () => {
		const got: Received[] = [];
		const compromised = await startRogue(BUS, namespace, { sees: [serverNode], services: [recordingService("evil", got, { actions: ["execute"] })] });
		brokers.push(compromised.broker);
		await waitFor(async () => server.broker.registry.getActionEndpoints("evil.execute")?.endpoints.some(e => e.node.id === compromised.nodeID));

		// A registration may not name one of our services for its deliveries (they would go there with this node's system token).
		expect(await compromised.call("agents.register", { name: "evil-agent", type: "worker", capabilities: ["evil-cap"], node_id: serverNode, service: "pipelines" }, { apiKey: TEST_SECRETS.API_KEY })).toEqual(refusal(422, "VALIDATION_ERROR"));

		const registered = await compromised.call("agents.register", { name: "evil-agent", type: "worker", capabilities: ["evil-cap"], node_id: compromised.nodeID, service: "evil" }, { apiKey: TEST_SECRETS.API_KEY });
		expect(registered.ok).toBe(true);
		const agent = (registered as { result: { id: string; token: string; delivery_key: string } }).result;
		expect(agent).toMatchObject({ token: expect.any(String), delivery_key: expect.any(String) });

		const task = (await operator.post("/api/v1/tasks", { type: "evil-cap", payload: { job: 1 } })).body.task_id;
		await waitFor(async () => got.length > 0);
		const [delivery] = got;
		expect(delivery.params).toMatchObject({ task_id: task, type: "evil-cap", payload: { job: 1 }, attempt: 1, signature: expect.any(String) });
		const meta = delivery.meta as Record<string, unknown>;
		expect(meta.token).toBeUndefined();
		expect(meta.apiKey).toBeUndefined();
		expect(meta.user).toBeUndefined();
		expect(jwtsIn(delivery)).toEqual([]);
		expect(JSON.stringify(delivery)).not.toContain(TEST_SECRETS.API_KEY);
		expect(JSON.stringify(delivery)).not.toContain(TEST_SECRETS.JWT_SECRET);
		await waitFor(async () => (await viewer.get(`/api/v1/tasks/${task}`)).body.status === "completed");

		// Its agent token: an agent, nothing more.
		const asAgent = client(server.url, agent.token);
		expect((await asAgent.delete(`/api/v1/agents/${victim.id}`)).status).toBe(403);
		expect((await asAgent.post(`/api/v1/agents/${victim.id}/drain`)).status).toBe(403);
		expect((await asAgent.post("/api/v1/tasks", { type: "victim-cap" })).status).toBe(403);
		expect((await asAgent.get("/api/v1/audit")).status).toBe(403);
		expect((await asAgent.post("/api/v1/auth/token", { sub: "escalated", roles: ["admin"] })).status).toBe(401);
		expect(await compromised.call("agents.remove", { id: victim.id }, { token: agent.token })).toEqual(refusal(403, "FORBIDDEN"));
		expect(await compromised.call("tasks.complete", { id: taskId, result: { forged: true } }, { token: agent.token })).toEqual(refusal(403, "FORBIDDEN"));
		const victimNow = (await viewer.get(`/api/v1/agents/${victim.id}`)).body;
		expect(victimNow.status).toBe("active");
		expect(victimNow.current_load).not.toBe(1);
		expect(Date.parse(victimNow.last_heartbeat)).toBeLessThanOrEqual(Date.now());
		expect((await viewer.get(`/api/v1/tasks/${taskId}`)).body).toMatchObject({ status: "running", result: null });
	});

	test("the reference agent node (API_KEY only, production) runs signed deliveries only: a rogue's direct call reads nothing", async () => {
		const ref = await agentNamed("ref-secure").catch(err => {
			throw new Error(`${(err as Error).message}; agent output: ${refOutput}`);
		});
		expect(ref.node_id).toMatch(/^ref-/);
		const done = await (async () => {
			const id = (await operator.post("/api/v1/tasks", { type: "data-ingestion", payload: { data_source: `file://${dataRoot}/sample.csv`, parameters: { format: "csv" } } })).body.task_id;
			return waitFor(async () => {
				const t = (await viewer.get(`/api/v1/tasks/${id}`)).body;
				return ["completed", "failed"].includes(t.status) ? t : undefined;
			}, 15_000);
		})();
		expect(done).toMatchObject({ status: "completed", assigned_agent: ref.id });

		await waitFor(async () => rogue.broker.registry.getActionEndpoints("reference-agent.execute")?.endpoints.some(e => e.node.id === ref.node_id));
		const delivery = { task_id: `task-${hex()}`, type: "data-ingestion", payload: { data_source: `file://${dataRoot}/secret.csv`, parameters: { format: "csv" } }, timeout: 10, attempt: 1 };
		const answers = [
			await rogue.call("reference-agent.execute", delivery, {}, ref.node_id),
			await rogue.call("reference-agent.execute", { ...delivery, signature: "0".repeat(64) }, mallory, ref.node_id),
			await rogue.call("reference-agent.execute", { ...delivery, signature: "made-up" }, { apiKey: "guessed" }, ref.node_id),
			// Its `$node` actions (its options hold the bus credentials) are not for other nodes either.
			await rogue.call("$node.options", {}, {}, ref.node_id)
		];
		expect(answers[0]).toEqual(refusal(422, "VALIDATION_ERROR"));
		expect(answers[1]).toEqual(refusal(403, "TASK_FAILED"));
		expect(answers[2]).toEqual(refusal(403, "TASK_FAILED"));
		expect(answers[3]).toEqual(refusal(403, "FORBIDDEN"));
		expect(JSON.stringify(answers)).not.toContain("hunter2");
		expect(JSON.stringify(answers)).not.toContain(TEST_SECRETS.API_KEY);
	}, 30_000);

	test("a rogue reusing a node's id does not stop that node (Moleculer would exit on a node-id conflict)", async () => {
		const fatal = jest.spyOn(server.broker, "fatal").mockImplementation(() => undefined);
		const bystanderFatal = jest.spyOn(bystander, "fatal").mockImplementation(() => undefined);
		const logged = jest.spyOn(server.broker.logger, "error");
		const bystanderLogged = jest.spyOn(bystander.logger, "error");
		const sawTwin = (spy: jest.SpyInstance) => spy.mock.calls.some(args => args.some((a: unknown) => typeof a === "string" && a.includes("this node's id")));
		try {
			for (const nodeID of [serverNode, bystander.nodeID]) {
				const twin = await startRogue(BUS, namespace, { nodeID });
				await waitFor(async () => fatal.mock.calls.length + bystanderFatal.mock.calls.length > 0 || (nodeID === serverNode ? sawTwin(logged) : sawTwin(bystanderLogged)), 5000);
				await twin.stop();
			}
			expect(fatal).not.toHaveBeenCalled();
			expect(bystanderFatal).not.toHaveBeenCalled();
			expect((await viewer.get("/api/v1/agents?limit=1")).status).toBe(200);
		} finally {
			fatal.mockRestore();
			bystanderFatal.mockRestore();
			logged.mockRestore();
			bystanderLogged.mockRestore();
		}
	});
});
