/**
 * Pipelines over real HTTP with real outside HTTP agents on loopback, a webhook receiver and an
 * SMTP server. Each test tags its stages with a capability only its own agent has, so agents of
 * other tests never take its tasks.
 */
import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Context } from "moleculer";
import { SMTPServer } from "smtp-server";
import { client, waitFor } from "../support/http";
import { complete, fail, postJson, silent, startHttpAgent, type AgentScript, type HttpAgent } from "../support/http-agent";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { loadServiceSchema, startServer, type TestServer } from "../support/server";
import { describeWith, NATS, POSTGRES } from "../support/services";
import type { StageDefinition, StageDependency, TaskDelivery } from "../../src/types";

type StageSpec = Partial<StageDefinition> & { name: string };
type ProgressEvent = { run: { run_id: string; pipeline_id: string; status: string; current_stage: number | null; completed_stages: number[]; progress: number } };

const TYPES = ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"] as const;
const stageIndex = (d: TaskDelivery) => (d.payload.stage as { index: number }).index;
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const WEBHOOK_SECRET = "test-webhook-secret-0123456789";

/** Answers the scripted statuses in turn (the last one for ever), keeping each raw body and its signature. */
async function startWebhookReceiver(statuses: number[]) {
	const received: Array<{ body: string; signature: string | undefined; timestamp: string | undefined; status: number }> = [];
	const server = http.createServer((req, res) => {
		let body = "";
		req.setEncoding("utf8");
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			const status = statuses[Math.min(received.length, statuses.length - 1)];
			received.push({ body, signature: req.headers["x-mcp-signature"] as string | undefined, timestamp: req.headers["x-mcp-timestamp"] as string | undefined, status });
			res.statusCode = status;
			res.end();
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=abc`,
		received,
		close: () => new Promise<void>(resolve => server.close(() => resolve()))
	};
}

describe("pipelines", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;
	let admin: ReturnType<typeof client>;
	let smtp: SMTPServer;
	const mails: Array<{ to: string[]; raw: string }> = [];
	const progress: ProgressEvent[] = [];
	const agents: HttpAgent[] = [];

	/** An agent that takes only the stages tagged `tag`. */
	async function agentFor(tag: string, script: AgentScript = complete(), cpu = 4) {
		const agent = await startHttpAgent();
		agents.push(agent);
		agent.script = script;
		const res = await operator.post("/api/v1/agents/register", {
			name: tag, type: "worker", capabilities: ["task-execution", tag], endpoints: { task: agent.endpoints.task }, resources: { cpu }
		});
		expect(res.status).toBe(201);
		return agent;
	}

	async function createPipeline(tag: string, stages: StageSpec[], dependencies?: StageDependency[]) {
		const res = await operator.post("/api/v1/pipelines", {
			name: `${tag}-pipeline`,
			description: `test pipeline ${tag}`,
			stages: stages.map((s, i) => ({ type: TYPES[i % TYPES.length], required_capabilities: [tag], ...s })),
			...(dependencies ? { dependencies } : {})
		});
		expect(res.status).toBe(201);
		return res.body.pipeline_id as string;
	}

	async function execute(pipelineId: string, body: Record<string, unknown> = {}) {
		const res = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, body);
		expect(res.status).toBe(202);
		expect(res.headers.get("location")).toBe(`/api/v1/pipelines/${pipelineId}/runs/${res.body.run_id}`);
		return res.body.run_id as string;
	}

	const getRun = async (pipelineId: string, runId: string) => (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
	const untilRun = (pipelineId: string, runId: string, status: string, ms = 10_000) =>
		waitFor(async () => {
			const run = await getRun(pipelineId, runId);
			return run.status === status ? run : undefined;
		}, ms);
	const deliveriesOf = (agent: HttpAgent, stage: number) => agent.deliveries.filter(d => stageIndex(d) === stage);

	beforeAll(async () => {
		smtp = new SMTPServer({
			authOptional: true,
			disabledCommands: ["STARTTLS"],
			logger: false,
			onData(stream, session, callback) {
				let raw = "";
				stream.setEncoding("utf8");
				stream.on("data", chunk => (raw += chunk));
				stream.on("end", () => {
					mails.push({ to: session.envelope.rcptTo.map(r => r.address), raw });
					callback();
				});
			}
		});
		await new Promise<void>(resolve => smtp.listen(0, "127.0.0.1", resolve));
		const smtpPort = (smtp.server.address() as AddressInfo).port;
		server = await startServer({
			RETRY_BASE_DELAY_MS: "50",
			RETRY_MAX_DELAY_MS: "200",
			HEALTH_CHECK_INTERVAL_MS: "60000",
			SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
			SMTP_FROM: "mcp@test.local",
			WEBHOOK_SECRET
		});
		// Hot-added after start: Moleculer starts it and routes the broadcast to it like to any service.
		server.broker.createService({
			name: "progress-probe",
			events: {
				[`pipeline.progress`](ctx: Context<ProgressEvent>) {
					progress.push(ctx.params);
				}
			}
		});
		await server.broker.waitForServices("progress-probe");
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
		admin = client(server.url, server.token(["admin"], "ada"));
	});

	afterAll(async () => {
		await server.stop();
		for (const agent of agents) await agent.close();
		await new Promise<void>(resolve => smtp.close(() => resolve()));
	});

	test("sequential by default: each stage starts after the one before completed, results flow forward", async () => {
		const agent = await agentFor("seq", d => complete({ from: stageIndex(d), rows: 10 * (stageIndex(d) + 1) })(d));
		const pipelineId = await createPipeline("seq", [
			{ name: "ingest", timeout: 120, retry_count: 1 },
			{ name: "transform", parameters: { batch_size: 5, only_here: true } },
			{ name: "analyse" }
		]);
		const created = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, {
			input_data: { source: "s3://bucket/input-data", format: "json" },
			parameters: { batch_size: 1000, parallel_workers: 4 }
		});
		expect(created.status).toBe(202);
		expect(created.body).toEqual({ run_id: expect.stringMatching(/^run-/), pipeline_id: pipelineId, status: "running" });
		const runId = created.body.run_id;

		const run = await untilRun(pipelineId, runId, "completed");
		expect(Object.keys(run).sort()).toEqual(
			["run_id", "created_by", "pipeline_id", "status", "current_stage", "completed_stages", "progress", "stages", "input_data", "parameters", "created_at", "updated_at", "finished_at"].sort()
		);
		expect(run).toMatchObject({
			run_id: runId, pipeline_id: pipelineId, status: "completed", current_stage: null, completed_stages: [0, 1, 2], progress: 1,
			input_data: { source: "s3://bucket/input-data", format: "json" }, parameters: { batch_size: 1000, parallel_workers: 4 }
		});
		expect(run.finished_at).toEqual(expect.any(String));
		expect(run.stages).toEqual([0, 1, 2].map(index => ({
			index, name: ["ingest", "transform", "analyse"][index], status: "completed", task_id: expect.stringMatching(/^task-/),
			result: { from: index, rows: 10 * (index + 1) }, error: null
		})));

		// Order: one delivery per stage, each after the previous stage's task completed.
		expect(agent.deliveries.map(stageIndex)).toEqual([0, 1, 2]);
		const tasks = await Promise.all(run.stages.map(async (s: { task_id: string }) => (await viewer.get(`/api/v1/tasks/${s.task_id}`)).body));
		for (let i = 1; i < tasks.length; i++) expect(Date.parse(tasks[i].created_at)).toBeGreaterThanOrEqual(Date.parse(tasks[i - 1].finished_at));
		expect(tasks[0]).toMatchObject({ pipeline_id: pipelineId, run_id: runId, stage: 0, type: "data-ingestion", timeout: 120, retry_count: 1 });
		expect(tasks[1]).toMatchObject({ stage: 1, type: "transformation", retry_count: 2, required_capabilities: ["seq"] });

		// The payload: run input, run parameters overridden by the stage's, and the dependencies' results.
		const [first, second] = agent.deliveries;
		expect(first.payload).toEqual({
			input_data: { source: "s3://bucket/input-data", format: "json" },
			parameters: { batch_size: 1000, parallel_workers: 4 },
			upstream: {},
			stage: { index: 0, name: "ingest", type: "data-ingestion" }
		});
		expect(second.payload).toMatchObject({
			parameters: { batch_size: 5, parallel_workers: 4, only_here: true },
			upstream: { ingest: { index: 0, type: "data-ingestion", status: "completed", result: { from: 0, rows: 10 } } },
			stage: { index: 1, name: "transform", type: "transformation" }
		});
		expect(Object.keys(agent.deliveries[2].payload.upstream as object)).toEqual(["transform"]);

		// pipeline.progress, persisted before announced: every event's state was already readable.
		const events = progress.filter(e => e.run.run_id === runId).map(e => e.run);
		expect(events.map(e => e.completed_stages)).toEqual([[], [0], [0, 1], [0, 1, 2]]);
		expect(events.map(e => e.current_stage)).toEqual([0, 1, 2, null]);
		expect(events.at(-1)).toMatchObject({ pipeline_id: pipelineId, status: "completed", progress: 1 });
		expect(events.map(e => e.progress)).toEqual([0, 0.33, 0.67, 1]);

		// The definition lists its runs; the list lists the definition.
		const definition = await viewer.get(`/api/v1/pipelines/${pipelineId}`);
		expect(definition.status).toBe(200);
		expect(definition.body).toMatchObject({
			pipeline_id: pipelineId, name: "seq-pipeline", dependencies: [{ from: 0, to: 1 }, { from: 1, to: 2 }],
			runs: [{ run_id: runId, status: "completed", progress: 1, created_at: run.created_at, finished_at: run.finished_at }]
		});
		expect(definition.body.stages[0]).toEqual({ name: "ingest", type: "data-ingestion", required: true, timeout: 120, retry_count: 1, required_capabilities: ["seq"] });
		const list = await viewer.get("/api/v1/pipelines");
		expect(list.body.pipelines.map((p: { pipeline_id: string }) => p.pipeline_id)).toContain(pipelineId);
	});

	test("diamond: the two branches run at once, the join only after both", async () => {
		const held = new Map<number, TaskDelivery>();
		const agent = await agentFor("diamond", d => (stageIndex(d) === 1 || stageIndex(d) === 2 ? void held.set(stageIndex(d), d) : complete({ at: stageIndex(d) })(d)));
		const pipelineId = await createPipeline("diamond", [{ name: "source" }, { name: "left" }, { name: "right" }, { name: "join" }], [
			{ from: 0, to: 1 }, { from: 0, to: 2 }, { from: 1, to: 3 }, { from: 2, to: 3 }
		]);
		const runId = await execute(pipelineId);
		await waitFor(async () => held.size === 2);
		const running = await getRun(pipelineId, runId);
		expect(running.stages.map((s: { status: string }) => s.status)).toEqual(["completed", "running", "running", "waiting"]);
		expect(running.current_stage).toBe(1);

		await postJson(held.get(2)!.callbacks.complete, held.get(2)!.callback_token, { result: { side: "right" } });
		await sleep(300);
		expect(deliveriesOf(agent, 3)).toHaveLength(0);
		expect((await getRun(pipelineId, runId)).stages[3].status).toBe("waiting");

		await postJson(held.get(1)!.callbacks.complete, held.get(1)!.callback_token, { result: { side: "left" } });
		await untilRun(pipelineId, runId, "completed");
		const join = deliveriesOf(agent, 3);
		expect(join).toHaveLength(1);
		expect(join[0].payload.upstream).toEqual({
			left: { index: 1, type: "transformation", status: "completed", result: { side: "left" } },
			right: { index: 2, type: "analysis", status: "completed", result: { side: "right" } }
		});
	});

	test("an optional stage that fails does not fail the run", async () => {
		const agent = await agentFor("optional", d => (stageIndex(d) === 1 ? fail("not today", false)(d) : complete({ ok: stageIndex(d) })(d)));
		const pipelineId = await createPipeline("optional", [{ name: "a" }, { name: "maybe", required: false, retry_count: 0 }, { name: "c" }]);
		const runId = await execute(pipelineId);
		const run = await untilRun(pipelineId, runId, "completed");
		expect(run.stages.map((s: { status: string }) => s.status)).toEqual(["completed", "failed", "completed"]);
		expect(run.stages[1]).toMatchObject({ error: "not today", result: null });
		expect(run.completed_stages).toEqual([0, 2]);
		expect(deliveriesOf(agent, 2)[0].payload.upstream).toEqual({ maybe: { index: 1, type: "transformation", status: "failed", result: null } });
	});

	test("a required stage that fails after its retries fails the run; later stages are skipped", async () => {
		const agent = await agentFor("required", d => (stageIndex(d) === 1 ? fail("broken input")(d) : complete()(d)));
		const pipelineId = await createPipeline("required", [{ name: "a" }, { name: "b", retry_count: 1 }, { name: "c" }, { name: "d" }]);
		const runId = await execute(pipelineId);
		const run = await untilRun(pipelineId, runId, "failed");
		expect(run.stages.map((s: { status: string }) => s.status)).toEqual(["completed", "failed", "skipped", "skipped"]);
		expect(run.stages[1].error).toBe("broken input");
		expect(run.stages[2]).toMatchObject({ task_id: null, error: expect.stringContaining("required stage 1 (b) failed") });
		expect(run.finished_at).toEqual(expect.any(String));
		expect(deliveriesOf(agent, 1)).toHaveLength(2);
		expect(deliveriesOf(agent, 2)).toHaveLength(0);
		const lastEvent = progress.filter(e => e.run.run_id === runId).at(-1)!;
		expect(lastEvent.run.status).toBe("failed");
	});

	test("cancel: the running stage's task is cancelled, waiting stages too; a finished run is 409", async () => {
		const agent = await agentFor("cancel", silent);
		const pipelineId = await createPipeline("cancel", [{ name: "slow" }, { name: "never" }]);
		const runId = await execute(pipelineId);
		await waitFor(async () => deliveriesOf(agent, 0).length === 1);
		const cancelled = await operator.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/cancel`);
		expect(cancelled.status).toBe(200);
		expect(cancelled.body).toMatchObject({ status: "cancelled", stages: [{ status: "cancelled" }, { status: "cancelled", task_id: null }] });
		const taskId = cancelled.body.stages[0].task_id;
		expect((await viewer.get(`/api/v1/tasks/${taskId}`)).body.status).toBe("cancelled");
		// A late report from the agent changes nothing.
		const d = deliveriesOf(agent, 0)[0];
		expect(await postJson(d.callbacks.complete, d.callback_token, { result: "late" })).toBe(409);
		await sleep(100);
		expect((await getRun(pipelineId, runId)).status).toBe("cancelled");
		expect(deliveriesOf(agent, 1)).toHaveLength(0);
		const again = await operator.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/cancel`);
		expect(again.status).toBe(409);
		expect(again.body.error.code).toBe("CONFLICT");
	});

	test("retry re-runs what failed and keeps what completed", async () => {
		let broken = true;
		const agent = await agentFor("retry", d => (stageIndex(d) === 1 && broken ? fail("flaky source", false)(d) : complete({ n: stageIndex(d) })(d)));
		const pipelineId = await createPipeline("retry", [{ name: "a" }, { name: "b" }, { name: "c" }]);
		const runId = await execute(pipelineId);
		const failed = await untilRun(pipelineId, runId, "failed");
		const notYet = await operator.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/retry`);
		expect(notYet.status).toBe(202);
		// The stage fails again at once: still broken. Now fix it and retry once more.
		await untilRun(pipelineId, runId, "failed");
		broken = false;
		const retried = await operator.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/retry`);
		expect(retried.status).toBe(202);
		expect(retried.body).toEqual({ run_id: runId, pipeline_id: pipelineId, status: "running" });
		const run = await untilRun(pipelineId, runId, "completed");
		expect(run.stages[0].task_id).toBe(failed.stages[0].task_id);
		expect(run.stages[1].task_id).not.toBe(failed.stages[1].task_id);
		expect(run.stages.map((s: { result: unknown }) => s.result)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
		expect(deliveriesOf(agent, 0)).toHaveLength(1);
		expect(deliveriesOf(agent, 1)).toHaveLength(3);
		expect(deliveriesOf(agent, 2)).toHaveLength(1);
		expect((await operator.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/retry`)).status).toBe(409);
	});

	test("422 names each problem: cycle, unknown stage index, unknown type; nothing is stored", async () => {
		const before = (await viewer.get("/api/v1/pipelines")).body.total;
		const cycle = await operator.post("/api/v1/pipelines", {
			name: "cyclic", stages: [{ name: "a", type: "analysis" }, { name: "b", type: "analysis" }, { name: "c", type: "output" }],
			dependencies: [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 1 }]
		});
		expect(cycle.status).toBe(422);
		expect(cycle.body.error).toMatchObject({ code: "VALIDATION_ERROR", details: [{ field: "dependencies", type: "cycle", message: "cycle: 1 → 2 → 1" }] });

		const unknown = await operator.post("/api/v1/pipelines", {
			name: "broken", stages: [{ name: "a", type: "teleport" }, { name: "b", type: "output" }], dependencies: [{ from: 0, to: 7 }]
		});
		expect(unknown.status).toBe(422);
		const fields = unknown.body.error.details.map((d: { field: string; message: string }) => `${d.field}: ${d.message}`);
		expect(fields).toEqual(expect.arrayContaining([expect.stringMatching(/^stages\[0\]\.type: must be one of/), "dependencies[0].to: unknown stage index 7 (stages are 0..1)"]));
		expect(unknown.body.error.message).toMatch(/stages\[0\]\.type/);

		expect((await operator.post("/api/v1/pipelines", { stages: [] })).body.error.details.map((d: { field: string }) => d.field)).toEqual(["name", "stages"]);
		expect((await viewer.get("/api/v1/pipelines")).body.total).toBe(before);
		expect((await viewer.post("/api/v1/pipelines", { name: "x", stages: [{ name: "a", type: "output" }] })).status).toBe(403);
	});

	test("404 for unknown pipelines and runs, and for a run asked for under another pipeline", async () => {
		await agentFor("notfound");
		const one = await createPipeline("notfound", [{ name: "a" }]);
		const other = await createPipeline("notfound", [{ name: "b" }]);
		const runId = await execute(one);
		expect((await viewer.get("/api/v1/pipelines/pipeline-nope")).status).toBe(404);
		expect((await operator.post("/api/v1/pipelines/pipeline-nope/execute", {})).status).toBe(404);
		expect((await viewer.get(`/api/v1/pipelines/${one}/runs/run-nope`)).status).toBe(404);
		const wrong = await viewer.get(`/api/v1/pipelines/${other}/runs/${runId}`);
		expect(wrong.status).toBe(404);
		expect(wrong.body.error.code).toBe("NOT_FOUND");
		expect((await operator.post(`/api/v1/pipelines/${other}/runs/${runId}/cancel`)).status).toBe(404);
		expect((await operator.post(`/api/v1/pipelines/${one}/runs/run-nope/retry`)).status).toBe(404);
		const badNotification = await operator.post(`/api/v1/pipelines/${one}/execute`, { notification: { webhook: "not a url", email: "nobody" } });
		expect(badNotification.status).toBe(422);
		expect(badNotification.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(["notification.email", "notification.webhook"]);
		await untilRun(one, runId, "completed");
	});

	test("webhook: the final run, signed with WEBHOOK_SECRET over its timestamp, retried after a 500", async () => {
		await agentFor("webhook");
		const receiver = await startWebhookReceiver([500, 200]);
		try {
			const pipelineId = await createPipeline("webhook", [{ name: "a" }, { name: "b" }]);
			const runId = await execute(pipelineId, { notification: { webhook: receiver.url } });
			await untilRun(pipelineId, runId, "completed");
			await waitFor(async () => receiver.received.length >= 2);
			await sleep(200);
			expect(receiver.received.map(r => r.status)).toEqual([500, 200]);
			for (const { body, signature, timestamp } of receiver.received) {
				expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
				expect(signature).toBe(`sha256=${createHmac("sha256", WEBHOOK_SECRET).update(`${timestamp}.${body}`).digest("hex")}`);
				expect(JSON.parse(body)).toEqual(await getRun(pipelineId, runId));
			}
			expect(JSON.parse(receiver.received[0].body)).toMatchObject({ run_id: runId, status: "completed", completed_stages: [0, 1] });
			const audit = await waitFor(async () => {
				const res = await admin.get("/api/v1/audit?action=notification.webhook");
				return res.body.entries.find((e: { target: string }) => e.target === runId);
			});
			expect(audit).toMatchObject({ actor: "system", result: "success", status: 200, path: receiver.url.split("?")[0] });
		} finally {
			await receiver.close();
		}
	});

	test("a webhook that keeps failing is audited as a failure and leaves the run completed", async () => {
		await agentFor("deadhook");
		const receiver = await startWebhookReceiver([503]);
		try {
			const pipelineId = await createPipeline("deadhook", [{ name: "a" }]);
			const runId = await execute(pipelineId, { notification: { webhook: receiver.url } });
			const audit = await waitFor(async () => {
				const res = await admin.get("/api/v1/audit?action=notification.webhook&result=failure");
				return res.body.entries.find((e: { target: string }) => e.target === runId);
			});
			expect(audit).toMatchObject({ actor: "system", action: "notification.webhook", result: "failure", status: 503 });
			expect(receiver.received).toHaveLength(5);
			expect((await getRun(pipelineId, runId)).status).toBe("completed");
		} finally {
			await receiver.close();
		}
	});

	test("email: a mail about the run's end through SMTP_URL", async () => {
		await agentFor("email", fail("no luck", false));
		const pipelineId = await createPipeline("email", [{ name: "only" }]);
		const runId = await execute(pipelineId, { notification: { email: "ops@example.com" } });
		await untilRun(pipelineId, runId, "failed");
		const mail = await waitFor(async () => mails.find(m => m.raw.includes(runId) || m.raw.replace(/=\r?\n/g, "").includes(runId)));
		expect(mail.to).toEqual(["ops@example.com"]);
		const unfolded = mail.raw.replace(/\r?\n[ \t]+/g, " ");
		expect(unfolded).toMatch(new RegExp(`^Subject: Pipeline email-pipeline run ${runId} failed$`, "m"));
		expect(unfolded).toMatch(/^From: mcp@test\.local$/m);
		const body = mail.raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
		expect(body).toContain("only: failed (no luck)");
		expect(body).toContain(`"run_id": "${runId}"`);
	});

	test("a stage task that ends while the pipelines service is away is taken when it comes back", async () => {
		let held: TaskDelivery | undefined;
		const agent = await agentFor("away", d => (stageIndex(d) === 0 ? void (held = d) : complete({ after: stageIndex(d) })(d)));
		const pipelineId = await createPipeline("away", [{ name: "first" }, { name: "second" }]);
		const runId = await execute(pipelineId);
		await waitFor(async () => held);
		await server.broker.destroyService("pipelines");
		// Nobody hears this task's end: the run still says stage 0 is running.
		expect(await postJson(held!.callbacks.complete, held!.callback_token, { result: { before: "restart" } })).toBe(200);
		server.broker.createService(loadServiceSchema("pipelines"));
		await server.broker.waitForServices("pipelines");
		const run = await untilRun(pipelineId, runId, "completed");
		expect(run.stages.map((s: { result: unknown }) => s.result)).toEqual([{ before: "restart" }, { after: 1 }]);
		expect(agent.deliveries.map(stageIndex)).toEqual([0, 1]);
	});
});

describeWith(POSTGRES, NATS)("two pipelines nodes over NATS sharing one PostgreSQL store", () => {
	let db: TestDatabase;
	let core: TestServer;
	let second: TestServer;
	let agent: HttpAgent;

	beforeAll(async () => {
		db = await createTestDatabase();
		const env = {
			TRANSPORTER: `nats://${NATS.host}:${NATS.port}`,
			NAMESPACE: `pipelines-${randomBytes(4).toString("hex")}`,
			DATABASE_URL: db.url,
			HEALTH_CHECK_INTERVAL_MS: "60000",
			RATE_LIMIT_PER_MINUTE: "100000"
		};
		// One after the other: the first creates the tables.
		core = await startServer({ ...env, NODE_ID: "pipelines-core" });
		second = await startServer({ ...env, NODE_ID: "pipelines-second" }, ["pipelines"]);
		await core.broker.waitForServices({ name: "pipelines" } as never);
		agent = await startHttpAgent();
	}, 60_000);
	afterAll(async () => {
		await second?.stop();
		await core?.stop();
		await agent?.close();
		await db?.drop();
	});

	test("both nodes hear every stage task's end; each run still makes each stage's task exactly once", async () => {
		const operator = client(core.url, core.token(["operator"]));
		expect(second.broker.registry.getServiceList({ onlyLocal: true }).map(s => s.name)).toContain("pipelines");
		const registered = await operator.post("/api/v1/agents/register", {
			name: "cluster-worker", type: "worker", capabilities: ["task-execution"], endpoints: { task: agent.endpoints.task }, resources: { cpu: 8 }
		});
		expect(registered.status).toBe(201);
		agent.script = d => complete({ stage: stageIndex(d) })(d);
		const created = await operator.post("/api/v1/pipelines", {
			name: "two-nodes",
			stages: [
				{ name: "a", type: "data-ingestion" }, { name: "b", type: "transformation" }, { name: "c", type: "analysis" }, { name: "d", type: "output" }
			],
			dependencies: [{ from: 0, to: 1 }, { from: 0, to: 2 }, { from: 1, to: 3 }, { from: 2, to: 3 }]
		});
		expect(created.status).toBe(201);
		const pipelineId = created.body.pipeline_id;
		// Executed through the second node too: its actor makes the first stage's task over the transporter.
		const runIds = await Promise.all(
			Array.from({ length: 12 }, async (_, i) => {
				const res = i % 2
					? await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: { i } })
					: { body: await second.broker.call<{ run_id: string }, object>("pipelines.execute", { id: pipelineId, input_data: { i } }) };
				return res.body.run_id as string;
			})
		);
		for (const runId of runIds) {
			const done = await waitFor(async () => {
				const res = await operator.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`);
				return res.body.status === "completed" ? res.body : undefined;
			}, 20_000);
			expect(done.completed_stages).toEqual([0, 1, 2, 3]);
			const tasks = (await operator.get(`/api/v1/tasks?run_id=${runId}&limit=100`)).body.tasks as Array<{ stage: number; status: string }>;
			expect(tasks.map(t => t.stage).sort()).toEqual([0, 1, 2, 3]);
			expect(tasks.every(t => t.status === "completed")).toBe(true);
		}
		expect(agent.deliveries).toHaveLength(runIds.length * 4);
	}, 60_000);
});
