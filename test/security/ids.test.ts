/**
 * Ids the engine makes are out of every client's reach (src/runtime/ids.ts): a client's
 * `Idempotency-Key` becomes an id scoped to its caller, in a namespace that is not the engine's
 * `task-stage-…`. A client who names itself like the engine (`sub: "system:…"`) and sends keys that
 * look like engine keys, or are the ids of real stage tasks, makes only tasks of its own: it never
 * gets an engine-made task back as if it were new, never collides with one, never mints a
 * `task-stage-` id; the real run it imitates goes on untouched.
 */
import { randomUUID } from "node:crypto";
import { TEST_SECRETS } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { complete, fail, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";
import { seeded } from "../support/seeded-random";

describe("engine ids against client idempotency keys", () => {
	let server: TestServer;
	let agent: HttpAgent;
	let operator: ReturnType<typeof client>;
	let impostor: string;
	let pipelineId: string;
	let runId: string;
	/** Every stage task id the engine made for the run, across its two generations. */
	const engineIds = new Set<string>();

	beforeAll(async () => {
		server = await startServer({ HEALTH_CHECK_INTERVAL_MS: "60000", RETRY_BASE_DELAY_MS: "50" });
		operator = client(server.url, server.token(["operator"], "olive"));
		agent = await startHttpAgent();
		// Stage 1 fails for good the first time; the run's retry makes a second generation of it.
		let stage1Failed = false;
		agent.script = d => {
			const index = (d.payload.stage as { index?: number } | undefined)?.index;
			if (index === 1 && !stage1Failed) {
				stage1Failed = true;
				return fail("first generation fails", false)(d);
			}
			return complete({ stage: index ?? null })(d);
		};
		const reg = await request(server.url, "POST", "/api/v1/agents/register", {
			body: { name: "ids-agent", type: "worker", capabilities: ["task-execution"], endpoints: { task: agent.endpoints.task }, resources: { cpu: 4 } },
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		expect(reg.status).toBe(201);

		const exchanged = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, sub: "system:pipelines", roles: ["operator"], expires_in: 600 } });
		expect(exchanged.status).toBe(200);
		impostor = exchanged.body.token;

		const created = await operator.post("/api/v1/pipelines", {
			name: "ids",
			stages: [{ name: "load", type: "data-ingestion" }, { name: "shape", type: "transformation", retry_count: 0 }, { name: "store", type: "output" }]
		});
		pipelineId = created.body.pipeline_id;
		runId = (await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: { records: [{ id: 1 }] } })).body.run_id;
		const runPath = `/api/v1/pipelines/${pipelineId}/runs/${runId}`;
		const failed = await waitFor(async () => {
			const run = (await operator.get(runPath)).body;
			return run.status === "failed" && run;
		});
		engineIds.add(failed.stages[0].task_id).add(failed.stages[1].task_id);
		expect((await operator.post(`${runPath}/retry`)).status).toBe(202);
		const done = await waitFor(async () => {
			const run = (await operator.get(runPath)).body;
			return run.status === "completed" && run;
		});
		for (const stage of done.stages) engineIds.add(stage.task_id);
	});
	afterAll(async () => {
		await server?.stop();
		await agent?.close();
	});

	const submit = (key: string, body: Record<string, unknown> = { type: "impostor", payload: { key } }, token = impostor) =>
		request(server.url, "POST", "/api/v1/tasks", { token, body, headers: { "Idempotency-Key": key } });

	test("the engine's stage tasks are task-stage-… ids, one per stage and generation", () => {
		expect(engineIds.size).toBe(4);
		for (const id of engineIds) expect(id).toMatch(/^task-stage-[0-9a-f]{32}$/);
	});

	test("a token minted as sub system:… is an operator like any other: no system role can be bought", async () => {
		const system = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, sub: `system:${server.broker.nodeID}`, roles: ["system"] } });
		expect(system.status).toBe(422);
		const asNode = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, sub: `system:${server.broker.nodeID}`, roles: ["operator"] } });
		expect(asNode.status).toBe(200);
		expect((await request(server.url, "GET", "/api/v1/audit", { token: asNode.body.token })).status).toBe(403);
	});

	test("keys that look like engine keys, or are real stage task ids, make new tasks of the client's own, never an engine id", async () => {
		const stageIds = [...engineIds];
		const keys = [
			`pipeline-run:${runId}:stage:0:attempt:0`,
			`pipeline-run:${runId}:stage:1:attempt:1`,
			`${runId}:0:0`,
			runId,
			...stageIds,
			...stageIds.map(id => id.replace(/^task-stage-/, "")),
			...stageIds.map(id => id.replace(/^task-/, "")),
			"task-stage-",
			"stage"
		];
		const made = new Set<string>();
		for (const key of keys) {
			const res = await submit(key);
			expect({ key, status: res.status }).toEqual({ key, status: 201 });
			// Its own task, as it asked for it: not an engine task handed back.
			expect(res.body).toMatchObject({ type: "impostor", payload: { key }, pipeline_id: null, run_id: null, status: "pending" });
			expect(res.body.task_id).toMatch(/^task-[0-9a-f]{32}$/);
			expect(engineIds.has(res.body.task_id)).toBe(false);
			made.add(res.body.task_id);
			// The same key again is the same task (the client's own namespace still works).
			expect((await submit(key)).body.task_id).toBe(res.body.task_id);
		}
		expect(made.size).toBe(keys.length);
		// The engine's tasks are as they were.
		for (const id of engineIds) expect((await operator.get(`/api/v1/tasks/${id}`)).body).toMatchObject({ task_id: id, pipeline_id: pipelineId, run_id: runId });
	});

	test("a client task dressed as a stage of a running run, keyed with that stage's task id, is the client's and the run ignores it", async () => {
		// A run that waits: its stage needs a capability no agent has.
		const waiting = (await operator.post("/api/v1/pipelines", { name: "waits", stages: [{ name: "held", type: "analysis", required_capabilities: ["nobody-has-this"] }] })).body.pipeline_id;
		const run = (await operator.post(`/api/v1/pipelines/${waiting}/execute`, {})).body.run_id;
		const runPath = `/api/v1/pipelines/${waiting}/runs/${run}`;
		const before = await waitFor(async () => {
			const view = (await operator.get(runPath)).body;
			return view.stages[0].task_id && view;
		});
		const stageTask = before.stages[0].task_id as string;
		expect(stageTask).toMatch(/^task-stage-/);

		const forged = await submit(stageTask, { type: "analysis", pipeline_id: waiting, run_id: run, stage: 0, payload: { forged: true } });
		expect(forged.status).toBe(201);
		expect(forged.body.task_id).not.toBe(stageTask);
		expect(forged.body.task_id.startsWith("task-stage-")).toBe(false);
		// The agent completes the forged one (it asks for no capability): its outcome is not the stage's.
		await waitFor(async () => (await operator.get(`/api/v1/tasks/${forged.body.task_id}`)).body.status === "completed");
		const after = (await operator.get(runPath)).body;
		expect(after).toMatchObject({ status: "running", stages: [{ index: 0, status: "running", task_id: stageTask, result: null }] });
		expect((await operator.get(`/api/v1/tasks/${stageTask}`)).body).toMatchObject({ status: "pending", result: null });
		expect((await operator.post(`${runPath}/cancel`)).status).toBe(200);
	});

	test("no key from any client ever yields a task-stage- id, and two subjects' equal keys never meet", async () => {
		const random = seeded(20240611);
		const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-:_./ ";
		const someone = server.token(["operator"], "someone-else");
		for (let i = 0; i < 60; i++) {
			const key = i % 3 === 0 ? `task-stage-${[...engineIds][i % engineIds.size].slice(11)}` : Array.from({ length: 1 + Math.floor(random() * 60) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("").trim() || "k";
			const mine = await submit(key, { type: "impostor", payload: { i } });
			const theirs = await submit(key, { type: "impostor", payload: { i } }, someone);
			for (const res of [mine, theirs]) {
				expect(res.status).toBe(201);
				expect(res.body.task_id.startsWith("task-stage-")).toBe(false);
				expect(engineIds.has(res.body.task_id)).toBe(false);
			}
			expect(theirs.body.task_id).not.toBe(mine.body.task_id);
		}
	});

	test("a run or a pipeline keyed like an engine id is the client's own too", async () => {
		const run = await request(server.url, "POST", `/api/v1/pipelines/${pipelineId}/execute`, { token: impostor, body: {}, headers: { "Idempotency-Key": runId } });
		expect(run.status).toBe(202);
		expect(run.body.run_id).not.toBe(runId);
		const pipeline = await request(server.url, "POST", "/api/v1/pipelines", {
			token: impostor,
			body: { name: `p-${randomUUID()}`, stages: [{ name: "s", type: "output" }] },
			headers: { "Idempotency-Key": pipelineId }
		});
		expect(pipeline.status).toBe(201);
		expect(pipeline.body.pipeline_id).not.toBe(pipelineId);
	});
});
