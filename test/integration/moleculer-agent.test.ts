/**
 * Moleculer agents in other processes over the real NATS server: the reference agent node runs
 * tasks on files in its data root and refuses any other; killing an agent node mid-task re-queues
 * its task onto another agent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { agentMixin, type AgentThis } from "../../mixins/agent.mixin";
import { createTestBroker, testConfig, TEST_SECRETS } from "../support/broker";
import { client, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const ROOT = path.resolve(__dirname, "../..");

describeWith(NATS)("Moleculer agent nodes over NATS", () => {
	let server: TestServer;
	let env: Record<string, string>;
	let dataRoot: string;
	const children: ChildProcess[] = [];
	const brokers: ServiceBroker[] = [];

	function spawnNode(script: string, extra: Record<string, string>): ChildProcess {
		const child = spawn(process.execPath, [script], { cwd: ROOT, env: { ...process.env, ...env, ...extra }, stdio: ["ignore", "ignore", "inherit"] });
		children.push(child);
		return child;
	}

	beforeAll(async () => {
		// Not made here: the agent node creates its root on start and copies sample.csv in.
		dataRoot = path.join(await mkdtemp(path.join(os.tmpdir(), "agent-root-")), "agent-data");
		env = {
			AGENT_DATA_ROOT: dataRoot,
			TRANSPORTER: `nats://${NATS.host}:${NATS.port}`,
			NAMESPACE: `agents-${randomBytes(4).toString("hex")}`,
			NODE_HEARTBEAT_INTERVAL_SEC: "1",
			NODE_HEARTBEAT_TIMEOUT_SEC: "3",
			LOG_LEVEL: "warn",
			...TEST_SECRETS
		};
		server = await startServer(env);
	}, 30_000);
	afterAll(async () => {
		for (const child of children) child.kill("SIGKILL");
		for (const b of brokers) await b.stop();
		await server?.stop();
		await rm(path.dirname(dataRoot), { recursive: true, force: true });
	});

	test("the reference agent node registers with its node_id and runs a real ingestion task", async () => {
		spawnNode("dist/agents/agent-node.js", { AGENT_NAME: "ref-1", AGENT_CAPABILITIES: "data-ingestion", NODE_ID: "ref-node-1" });
		const viewer = client(server.url, server.token(["viewer"]));
		const agent = await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { name: string }) => a.name === "ref-1"), 20_000);
		expect(agent).toMatchObject({ node_id: "ref-node-1", status: "active", capabilities: ["data-ingestion"], resources: { cpu: 2 } });
		const operator = client(server.url, server.token(["operator"]));
		const created = await operator.post("/api/v1/tasks", {
			type: "data-ingestion",
			payload: { data_source: `file://${dataRoot}/sample.csv`, parameters: { format: "csv", delimiter: "," } }
		});
		const done = await waitFor(async () => {
			const t = (await viewer.get(`/api/v1/tasks/${created.body.task_id}`)).body;
			return t.status === "completed" || t.status === "failed" ? t : undefined;
		}, 20_000);
		expect(done).toMatchObject({ status: "completed", assigned_agent: agent.id, error: null });
		expect(done.result.count).toBe(30);
	}, 40_000);

	test("the reference agent node refuses a file outside its data root: the task fails at once, not retried", async () => {
		spawnNode("dist/agents/agent-node.js", { AGENT_NAME: "ref-guard", AGENT_CAPABILITIES: "data-ingestion", NODE_ID: "ref-node-guard" });
		const viewer = client(server.url, server.token(["viewer"]));
		await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { name: string; status: string }) => a.name === "ref-guard" && a.status === "active"), 20_000);
		const created = await client(server.url, server.token(["operator"])).post("/api/v1/tasks", {
			type: "data-ingestion",
			payload: { data_source: "file:///etc/passwd" },
			retry_count: 3
		});
		expect(created.status).toBe(201);
		const done = await waitFor(async () => {
			const t = (await viewer.get(`/api/v1/tasks/${created.body.task_id}`)).body;
			return t.status === "completed" || t.status === "failed" ? t : undefined;
		}, 20_000);
		expect(done).toMatchObject({ status: "failed", attempt: 1 });
		expect(String(done.error)).toContain("PATH_OUTSIDE_DATA_ROOT");
		expect(String(done.error)).toContain("file:///etc/passwd");
		expect(JSON.stringify(done)).not.toContain("root:x:0:0");
	}, 40_000);

	test("killing an agent node mid-task: it goes offline and its task finishes on another agent", async () => {
		const child = spawnNode("test/support/slow-agent-node.js", { AGENT_NAME: "doomed-node-agent", AGENT_CAPABILITIES: "handover-job", NODE_ID: "doomed-node" });
		const viewer = client(server.url, server.token(["viewer"]));
		const doomed = await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { name: string; status: string }) => a.name === "doomed-node-agent" && a.status === "active"), 20_000);
		const created = await client(server.url, server.token(["operator"])).post("/api/v1/tasks", { type: "handover-job", payload: { n: 1 } });
		await waitFor(async () => (await viewer.get(`/api/v1/tasks/${created.body.task_id}`)).body.status === "running", 10_000);

		const rescuer = createTestBroker(testConfig({ ...env, NODE_ID: `rescuer-${randomBytes(3).toString("hex")}` }));
		brokers.push(rescuer);
		rescuer.createService({
			name: "rescue-agent",
			mixins: [agentMixin({ name: "rescuer", capabilities: ["handover-job"] })],
			methods: { async handleTask(this: AgentThis) { return { rescued: true }; } }
		});
		await rescuer.start();
		await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { name: string }) => a.name === "rescuer"), 10_000);

		child.kill("SIGKILL");
		const done = await waitFor(async () => {
			const t = (await viewer.get(`/api/v1/tasks/${created.body.task_id}`)).body;
			return t.status === "completed" ? t : undefined;
		}, 20_000);
		expect(done.result).toEqual({ rescued: true });
		expect(done.attempt).toBe(2);
		expect(done.logs.map((l: { message: string }) => l.message).join("\n")).toMatch(new RegExp(`Agent ${doomed.id} .*; re-queued after attempt 1`));
		expect((await viewer.get(`/api/v1/agents/${doomed.id}`)).body.status).toBe("offline");
	}, 40_000);
});
