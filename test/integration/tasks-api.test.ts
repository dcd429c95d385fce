/**
 * Tasks over real HTTP with real outside HTTP agents on loopback.
 */
import { client, request, waitFor } from "../support/http";
import { complete, fail, postJson, silent, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";

describe("tasks with HTTP agents", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;
	const agents: HttpAgent[] = [];

	async function registerAgent(name: string, capabilities: string[], cpu = 1) {
		const http = await startHttpAgent();
		agents.push(http);
		const res = await operator.post("/api/v1/agents/register", { name, type: "worker", capabilities, endpoints: { task: http.endpoints.task }, resources: { cpu } });
		expect(res.status).toBe(201);
		return { http, agent: res.body as { id: string; token: string } };
	}
	const task = async (id: string) => (await viewer.get(`/api/v1/tasks/${id}`)).body;
	const until = (id: string, status: string, ms = 10_000) => waitFor(async () => ((await task(id)).status === status ? task(id) : undefined), ms);

	beforeAll(async () => {
		server = await startServer({ RETRY_BASE_DELAY_MS: "50", RETRY_MAX_DELAY_MS: "200", HEALTH_CHECK_INTERVAL_MS: "60000" });
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
	});
	afterAll(async () => {
		await server.stop();
		for (const a of agents) await a.close();
	});

	test("submit → delivered to a capable agent → completed with its result, logs and timestamps", async () => {
		const { http, agent } = await registerAgent("ingestor", ["data-ingestion"]);
		http.script = complete({ rows: 42 });
		const created = await operator.post("/api/v1/tasks", {
			pipeline_id: "pipeline-123", stage: 1, type: "data-ingestion",
			payload: { data_source: "s3://bucket/data.csv", parameters: { format: "csv", delimiter: "," } },
			priority: "high", timeout: 300, retry_count: 3
		});
		expect(created.status).toBe(201);
		expect(created.headers.get("location")).toBe(`/api/v1/tasks/${created.body.task_id}`);
		expect(created.body).toMatchObject({ task_id: expect.stringMatching(/^task-/), pipeline_id: "pipeline-123", stage: 1, progress: 0, error: null });
		const done = await until(created.body.task_id, "completed");
		expect(done).toMatchObject({ status: "completed", progress: 1, assigned_agent: agent.id, result: { rows: 42 }, attempt: 1, error: null });
		expect(Date.parse(done.started_at)).toBeLessThanOrEqual(Date.parse(done.updated_at));
		expect(done.logs.map((l: { message: string }) => l.message)).toEqual(["Task submitted", expect.stringContaining("Attempt 1 started"), "Attempt 1 completed"]);
		const d = http.deliveries.at(-1)!;
		expect(d).toMatchObject({ task_id: created.body.task_id, type: "data-ingestion", timeout: 300, attempt: 1, payload: { data_source: "s3://bucket/data.csv" } });
		expect(d.callbacks.complete).toBe(`${server.url}/api/v1/tasks/${created.body.task_id}/complete`);
	});

	test("a failed attempt is retried with backoff, then succeeds", async () => {
		const { http } = await registerAgent("flaky", ["transformation"]);
		let calls = 0;
		http.script = d => (++calls === 1 ? fail("transient")(d) : complete({ second: true })(d));
		const created = await operator.post("/api/v1/tasks", { type: "transformation", retry_count: 2 });
		const done = await until(created.body.task_id, "completed");
		expect(done.attempt).toBe(2);
		expect(done.result).toEqual({ second: true });
		expect(done.logs.map((l: { message: string }) => l.message).join("\n")).toMatch(/Attempt 1 failed: transient; retrying in \d+ ms/);
	});

	test("retries exhausted → failed with the error", async () => {
		const { http } = await registerAgent("broken", ["analysis"]);
		http.script = fail("always broken");
		const created = await operator.post("/api/v1/tasks", { type: "analysis", retry_count: 2 });
		const failed = await until(created.body.task_id, "failed");
		expect(failed).toMatchObject({ status: "failed", attempt: 3, error: "always broken" });
		expect(http.deliveries.filter(d => d.task_id === created.body.task_id)).toHaveLength(3);
	});

	test("a non-retryable failure fails at once", async () => {
		const { http } = await registerAgent("strict", ["validation"]);
		http.script = fail("bad input", false);
		const created = await operator.post("/api/v1/tasks", { type: "validation", retry_count: 5 });
		expect(await until(created.body.task_id, "failed")).toMatchObject({ attempt: 1, error: "bad input" });
	});

	test("an attempt that exceeds its timeout is retried, then fails", async () => {
		const { http } = await registerAgent("sleepy", ["processing"]);
		http.script = silent;
		const created = await operator.post("/api/v1/tasks", { type: "processing", timeout: 0.3, retry_count: 1 });
		const failed = await until(created.body.task_id, "failed");
		expect(failed.attempt).toBe(2);
		expect(failed.error).toMatch(/timed out/);
	});

	test("no capable agent: the task waits pending and starts as soon as one registers", async () => {
		const created = await operator.post("/api/v1/tasks", { type: "output", required_capabilities: ["gpu"] });
		await new Promise(r => setTimeout(r, 300));
		expect((await task(created.body.task_id)).status).toBe("pending");
		const { agent } = await registerAgent("gpu-writer", ["output", "gpu"]);
		expect(await until(created.body.task_id, "completed", 5000)).toMatchObject({ assigned_agent: agent.id });
	});

	test("cancel: pending → cancelled; cancelling again is 409", async () => {
		const created = await operator.post("/api/v1/tasks", { type: "nobody-does-this" });
		const cancelled = await operator.post(`/api/v1/tasks/${created.body.task_id}/cancel`);
		expect(cancelled.status).toBe(200);
		expect(cancelled.body.status).toBe("cancelled");
		const again = await operator.post(`/api/v1/tasks/${created.body.task_id}/cancel`);
		expect(again.status).toBe(409);
		expect(again.body.error).toMatchObject({ code: "CONFLICT", details: { from: "cancelled", to: "cancelled" } });
	});

	test("Idempotency-Key: the same key returns the same task; another caller's key is separate", async () => {
		const body = { type: "nobody-does-this", payload: { n: 1 } };
		const first = await operator.post("/api/v1/tasks", body, { "Idempotency-Key": "order-77" });
		const second = await operator.post("/api/v1/tasks", body, { "Idempotency-Key": "order-77" });
		expect(second.body.task_id).toBe(first.body.task_id);
		const other = await client(server.url, server.token(["operator"], "someone-else")).post("/api/v1/tasks", body, { "Idempotency-Key": "order-77" });
		expect(other.body.task_id).not.toBe(first.body.task_id);
		const listed = await viewer.get("/api/v1/tasks?status=pending&limit=1000");
		expect(listed.body.tasks.filter((t: { task_id: string }) => t.task_id === first.body.task_id)).toHaveLength(1);
	});

	test("callbacks with another agent's token are refused; the owner's are accepted", async () => {
		const owner = await registerAgent("owner", ["forge-test"]);
		const intruder = await registerAgent("intruder", ["other"]);
		owner.http.script = silent;
		const created = await operator.post("/api/v1/tasks", { type: "forge-test" });
		const d = await waitFor(async () => owner.http.deliveries.find(x => x.task_id === created.body.task_id));
		expect(await postJson(d.callbacks.complete, intruder.agent.token, { result: "forged" })).toBe(403);
		// a callback token only works for its own task
		const other = await operator.post("/api/v1/tasks", { type: "nobody-does-this" });
		expect(await postJson(`${server.url}/api/v1/tasks/${other.body.task_id}/complete`, d.callback_token, { result: "x" })).toBe(403);
		expect((await task(created.body.task_id)).status).toBe("running");
		expect(await postJson(d.callbacks.progress, d.callback_token, { progress: 0.5, message: "half way" })).toBe(200);
		expect((await task(created.body.task_id)).progress).toBe(0.5);
		expect(await postJson(d.callbacks.complete, owner.agent.token, { result: "real" })).toBe(200);
		expect(await task(created.body.task_id)).toMatchObject({ status: "completed", result: "real" });
		// a finished task takes no more reports
		expect(await postJson(d.callbacks.fail, d.callback_token, { error: "late" })).toBe(409);
	});

	test("200 concurrent callbacks on one task leave one consistent outcome", async () => {
		const { http } = await registerAgent("racer", ["race"]);
		http.script = silent;
		const created = await operator.post("/api/v1/tasks", { type: "race", retry_count: 0 });
		const d = await waitFor(async () => http.deliveries.find(x => x.task_id === created.body.task_id));
		const statuses = await Promise.all(
			Array.from({ length: 200 }, (_, i) =>
				i % 4 === 0 ? postJson(d.callbacks.complete, d.callback_token, { result: { winner: i } })
				: i % 4 === 1 ? postJson(d.callbacks.fail, d.callback_token, { error: `loser ${i}` })
				: postJson(d.callbacks.progress, d.callback_token, { progress: (i % 100) / 100 })
			)
		);
		const final = await task(created.body.task_id);
		const finishes = statuses.filter((s, i) => s === 200 && i % 4 <= 1);
		expect(finishes).toHaveLength(1);
		expect(statuses.every(s => s === 200 || s === 409)).toBe(true);
		expect(["completed", "failed"]).toContain(final.status);
		expect(final.logs.filter((l: { message: string }) => /completed|giving up/.test(l.message))).toHaveLength(1);
	});

	test("a rejected delivery counts as a failed attempt", async () => {
		const { http } = await registerAgent("refuser", ["refuse"]);
		http.deliveryStatus = 503;
		const created = await operator.post("/api/v1/tasks", { type: "refuse", retry_count: 0 });
		// What viewers read says what went wrong, not the agent's status code (that goes to the server log).
		const { error } = await until(created.body.task_id, "failed");
		expect(error).toBe("Delivery to the agent's task endpoint failed: it answered with an error");
	});

	test("payloads and results keep any JSON keys (dots, $-prefixed)", async () => {
		const { http } = await registerAgent("keys", ["odd-keys"]);
		http.script = complete({ "total.sum": 3, $meta: { "a.b": true } });
		const payload = { "file.name": "x.csv", $where: "anything" };
		const created = await operator.post("/api/v1/tasks", { type: "odd-keys", payload });
		expect(created.status).toBe(201);
		const done = await until(created.body.task_id, "completed");
		expect(done.payload).toEqual(payload);
		expect(done.result).toEqual({ "total.sum": 3, $meta: { "a.b": true } });
		expect(http.deliveries.at(-1)!.payload).toEqual(payload);
	});

	test("validation: 422 names the fields; nothing stored", async () => {
		const before = (await viewer.get("/api/v1/tasks?limit=1")).body.total;
		const res = await operator.post("/api/v1/tasks", { type: "", priority: "urgent", timeout: -5, retry_count: 1.5 });
		expect(res.status).toBe(422);
		expect(res.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(["priority", "retry_count", "timeout", "type"]);
		expect((await viewer.get("/api/v1/tasks?limit=1")).body.total).toBe(before);
	});

	test("list filters by status and agent, with paging and total", async () => {
		const res = await viewer.get("/api/v1/tasks?status=completed&limit=2&offset=0");
		expect(res.status).toBe(200);
		expect(res.body.tasks.length).toBeLessThanOrEqual(2);
		expect(res.body.total).toBeGreaterThanOrEqual(3);
		expect(res.body.tasks.every((t: { status: string }) => t.status === "completed")).toBe(true);
		const agentId = res.body.tasks[0].assigned_agent;
		const byAgent = await viewer.get(`/api/v1/tasks?agent_id=${agentId}`);
		expect(byAgent.body.tasks.every((t: { assigned_agent: string }) => t.assigned_agent === agentId)).toBe(true);
		expect((await viewer.get("/api/v1/tasks/task-nope")).status).toBe(404);
		expect((await request(server.url, "POST", "/api/v1/tasks", { token: server.token(["viewer"]), body: { type: "x" } })).status).toBe(403);
	});

	test("deleting an agent re-queues its running task onto another agent", async () => {
		const first = await registerAgent("doomed", ["handover"]);
		first.http.script = silent;
		const created = await operator.post("/api/v1/tasks", { type: "handover" });
		await waitFor(async () => first.http.deliveries.find(x => x.task_id === created.body.task_id));
		const second = await registerAgent("heir", ["handover"]);
		await operator.delete(`/api/v1/agents/${first.agent.id}`);
		const done = await until(created.body.task_id, "completed");
		expect(done.assigned_agent).toBe(second.agent.id);
		expect(done.attempt).toBe(2);
		expect(done.logs.map((l: { message: string }) => l.message).join("\n")).toMatch(/was deregistered; re-queued after attempt 1/);
	});
});
