/**
 * The server side of the control panel over real HTTP: why a task waits (the dispatch policy's own
 * rules), retrying one task, bulk actions with their dry run, the Overview, and the local reference
 * agent that lets `npm start` alone run the spec's six-stage pipeline.
 */
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../support/broker";
import { client, waitFor } from "../support/http";
import { fail, silent, startHttpAgent, type AgentScript, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";

describe("panel API", () => {
	let server: TestServer;
	const agents: HttpAgent[] = [];
	const as = (sub: string, roles: Array<"viewer" | "operator" | "admin"> = ["operator"]) => client(server.url, server.token(roles, sub));
	let alice: ReturnType<typeof client>;
	let bob: ReturnType<typeof client>;
	let admin: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;

	async function agentFor(name: string, capabilities: string[], script: AgentScript = silent, cpu = 1) {
		const http = await startHttpAgent();
		http.script = script;
		agents.push(http);
		const res = await admin.post("/api/v1/agents/register", { name, type: "worker", capabilities, endpoints: { task: http.endpoints.task }, resources: { cpu } });
		expect(res.status).toBe(201);
		return { http, id: res.body.id as string };
	}
	const task = async (id: string) => (await viewer.get(`/api/v1/tasks/${id}`)).body;
	const until = (id: string, status: string) => waitFor(async () => ((await task(id)).status === status ? task(id) : undefined));

	beforeAll(async () => {
		server = await startServer({ RETRY_BASE_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "50", HEALTH_CHECK_INTERVAL_MS: "60000", MAX_CONCURRENT_TASKS: "3" });
		alice = as("alice");
		bob = as("bob");
		admin = as("root", ["admin"]);
		viewer = as("vic", ["viewer"]);
	});
	afterAll(async () => {
		await server.stop();
		for (const a of agents) await a.close();
	});

	test("explain: each agent, and every rule of the policy it fails, for a task that waits", async () => {
		const busy = await agentFor("explain-busy", ["task-execution", "explain-x"], silent, 1);
		const wrong = await agentFor("explain-wrong", ["something-else"]);
		const drained = await agentFor("explain-drained", ["task-execution", "explain-x"]);
		expect((await admin.post(`/api/v1/agents/${drained.id}/drain`)).status).toBe(200);
		// The busy agent's one slot is taken by a first task.
		const first = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["explain-x"] })).body.task_id;
		await until(first, "running");
		const waiting = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["explain-x", "gpu-99"] })).body.task_id;

		const res = await viewer.get(`/api/v1/tasks/${waiting}/explain`);
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({ task_id: waiting, status: "pending", waiting: true, cluster: { running: 1, max: 3, full: false } });
		const verdict = (id: string) => res.body.agents.find((a: { agent_id: string }) => a.agent_id === id);
		expect(verdict(busy.id)).toMatchObject({ name: "explain-busy", eligible: false, reasons: ["missing_capability", "at_concurrency"], missing_capabilities: ["gpu-99"] });
		expect(verdict(wrong.id)).toMatchObject({ eligible: false, missing_capabilities: ["processing", "explain-x", "gpu-99"] });
		expect(verdict(drained.id)).toMatchObject({ status: "draining", reasons: ["missing_capability", "draining"] });

		// A running task does not wait; an unknown one is 404.
		expect((await viewer.get(`/api/v1/tasks/${first}/explain`)).body).toMatchObject({ status: "running", waiting: false, agents: [] });
		expect((await viewer.get("/api/v1/tasks/task-nope/explain")).status).toBe(404);
		for (const id of [first, waiting]) await alice.post(`/api/v1/tasks/${id}/cancel`);
	});

	test("explain names the cluster limit when MAX_CONCURRENT_TASKS is reached", async () => {
		const wide = await agentFor("explain-wide", ["task-execution", "explain-wide"], silent, 8);
		const running = [];
		for (let i = 0; i < 3; i++) running.push((await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["explain-wide"] })).body.task_id);
		for (const id of running) await until(id, "running");
		const fourth = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["explain-wide"] })).body.task_id;
		const res = await viewer.get(`/api/v1/tasks/${fourth}/explain`);
		expect(res.body.cluster).toEqual({ running: 3, max: 3, full: true });
		expect(res.body.agents.find((a: { agent_id: string }) => a.agent_id === wide.id)).toMatchObject({ eligible: false, reasons: ["cluster_limit"] });
		for (const id of [...running, fourth]) await alice.post(`/api/v1/tasks/${id}/cancel`);
	});

	test("retry: a failed task runs again with its retries anew; only its creator or an admin; not while it runs", async () => {
		const agent = await agentFor("retry-one", ["task-execution", "retry-one"], fail("broken", false));
		const id = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["retry-one"], retry_count: 1 })).body.task_id;
		await until(id, "failed");
		expect((await bob.post(`/api/v1/tasks/${id}/retry`)).status).toBe(403);
		agent.http.script = silent;
		const retried = await alice.post(`/api/v1/tasks/${id}/retry`);
		expect(retried.status).toBe(200);
		expect(retried.body).toMatchObject({ status: "pending", error: null, finished_at: null });
		const running = await until(id, "running");
		expect(running.attempt).toBe(2);
		const again = await alice.post(`/api/v1/tasks/${id}/retry`);
		expect(again.status).toBe(409);
		expect(again.body.error.code).toBe("CONFLICT");
		await alice.post(`/api/v1/tasks/${id}/cancel`);
	});

	test("bulk: a dry run counts what the caller may change, and the real one changes exactly that; audited", async () => {
		const ids = { alice: [] as string[], bob: [] as string[] };
		for (let i = 0; i < 4; i++) ids.alice.push((await alice.post("/api/v1/tasks", { type: "bulk-kind", required_capabilities: ["nobody"] })).body.task_id);
		for (let i = 0; i < 2; i++) ids.bob.push((await bob.post("/api/v1/tasks", { type: "bulk-kind", required_capabilities: ["nobody"] })).body.task_id);
		const body = { action: "cancel", filter: { type: "bulk-kind", status: "pending" } };

		expect((await alice.post("/api/v1/tasks/bulk", { ...body, dry_run: true })).body).toEqual({ matched: 4, changed: 0 });
		expect((await admin.post("/api/v1/tasks/bulk", { ...body, dry_run: true })).body).toEqual({ matched: 6, changed: 0 });
		expect((await viewer.post("/api/v1/tasks/bulk", { ...body, dry_run: true })).status).toBe(403);
		for (const id of [...ids.alice, ...ids.bob]) expect((await task(id)).status).toBe("pending");

		expect((await alice.post("/api/v1/tasks/bulk", body)).body).toEqual({ matched: 4, changed: 4 });
		for (const id of ids.alice) expect((await task(id)).status).toBe("cancelled");
		for (const id of ids.bob) expect((await task(id)).status).toBe("pending");

		// Retry N cancelled (here: the cancelled ones), then nothing more to do.
		expect((await alice.post("/api/v1/tasks/bulk", { action: "retry", filter: { type: "bulk-kind", status: "cancelled" } })).body).toEqual({ matched: 4, changed: 4 });
		expect((await alice.post("/api/v1/tasks/bulk", { action: "retry", filter: { type: "bulk-kind", status: "cancelled" }, dry_run: true })).body).toEqual({ matched: 0, changed: 0 });

		const audit = await admin.get("/api/v1/audit?action=tasks.bulk&limit=10");
		expect(audit.body.entries.filter((e: { actor: string }) => e.actor === "alice").length).toBeGreaterThanOrEqual(3);
		expect((await alice.post("/api/v1/tasks/bulk", { action: "delete", filter: {} })).status).toBe(422);
		await admin.post("/api/v1/tasks/bulk", { action: "cancel", filter: { type: "bulk-kind" } });
	});

	test("GET /tasks filters by type", async () => {
		const id = (await alice.post("/api/v1/tasks", { type: "only-this-type", required_capabilities: ["nobody"] })).body.task_id;
		const res = await viewer.get("/api/v1/tasks?type=only-this-type");
		expect(res.body.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([id]);
		await alice.post(`/api/v1/tasks/${id}/cancel`);
	});

	test("overview: tasks by status, capacity by capability (a capability nobody has stands out), and the flow history", async () => {
		await agentFor("overview-agent", ["task-execution", "overview-cap"], silent, 3);
		const queued = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["overview-orphan"] })).body.task_id;
		const res = await viewer.get("/api/v1/overview");
		expect(res.status).toBe(200);
		const { tasks, agents, history } = res.body;
		expect(tasks.by_status.pending).toBeGreaterThanOrEqual(1);
		expect(tasks.queue_depth).toBe(tasks.by_status.pending + tasks.by_status.retrying);
		expect(tasks.by_capability["overview-orphan"]).toEqual({ queued: 1 });
		expect(agents.by_capability["overview-orphan"]).toEqual({ agents: 0, live: 0, slots: 0, used: 0, queued: 1 });
		expect(agents.by_capability["overview-cap"]).toMatchObject({ agents: 1, live: 1, slots: 3, used: 0 });
		expect(agents.total).toBeGreaterThanOrEqual(agents.online);
		expect(history).toHaveLength(90);
		expect(history.every((p: { completed: number; failed: number }) => p.completed >= 0 && p.failed >= 0)).toBe(true);
		await alice.post(`/api/v1/tasks/${queued}/cancel`);
	});
});

describe("LOCAL_AGENT: the reference agent in the server's own process", () => {
	let server: TestServer;
	const root = tempDir("mcp-local-agent-");
	beforeAll(async () => {
		server = await startServer({ LOCAL_AGENT: "true", AGENT_DATA_ROOT: root, AGENT_CONCURRENCY: "2" });
	});
	afterAll(() => server.stop());

	test("registers itself, finds sample.csv in its data root, and runs the spec's six-stage pipeline on it", async () => {
		const operator = client(server.url, server.token(["operator"], "newcomer"));
		const local = await waitFor(async () => (await operator.get("/api/v1/agents")).body.agents.find((a: { name: string }) => a.name.startsWith("local-agent-")));
		expect(local).toMatchObject({ status: "active", node_id: server.broker.nodeID, capabilities: ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"] });
		expect(fs.existsSync(path.join(root, "sample.csv"))).toBe(true);
		const names = ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"];
		const types = ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"];
		const created = await operator.post("/api/v1/pipelines", { name: "first-run", stages: names.map((name, i) => ({ name, type: types[i] })) });
		const run = await operator.post(`/api/v1/pipelines/${created.body.pipeline_id}/execute`, { input_data: { source: "sample.csv", format: "csv" } });
		expect(run.status).toBe(202);
		const done = await waitFor(async () => {
			const r = (await operator.get(`/api/v1/pipelines/${created.body.pipeline_id}/runs/${run.body.run_id}`)).body;
			return r.status === "completed" || r.status === "failed" ? r : undefined;
		}, 20_000);
		expect(done.status).toBe("completed");
		const output = done.stages[5].result.output as string;
		expect(output.startsWith(`file://${root}`)).toBe(true);
		expect(fs.existsSync(new URL(output))).toBe(true);
	});
});
