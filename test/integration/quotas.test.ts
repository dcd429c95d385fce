/**
 * Task submission quotas over real HTTP (TASK_QUOTA_PER_HOUR, MAX_OPEN_TASKS_PER_SUBJECT): on one
 * node, on one node whose Redis is unreachable, and on two full nodes over the real NATS that share
 * a PostgreSQL database and the machine's Redis — where the limits must hold for the whole cluster.
 */
import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { OPEN_TASKS_RETRY_AFTER_S } from "../../src/domain/quotas";
import type { EntityStore } from "../../src/storage/entity-store";
import type { Task } from "../../src/types";
import { freePort } from "../support/cluster";
import { client, type HttpResult } from "../support/http";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS, POSTGRES, REDIS } from "../support/services";

type Client = ReturnType<typeof client>;

/** A task no agent can take: it stays pending, so it stays open. */
const WAITING = { type: "quota-job", required_capabilities: ["nobody-has-this"] };

const as = (server: TestServer, sub: string) => client(server.url, server.token(["operator"], sub));
const submit = (c: Client, headers?: Record<string, string>) => c.post("/api/v1/tasks", WAITING, headers);
const execute = (c: Client, pipelineId: string) => c.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: {} });
const statuses = (results: HttpResult[]) => results.map(r => r.status);

/** A pipeline (anyone may execute it) of `stages` stages that no agent can take, all starting at once. */
async function waitingPipeline(server: TestServer, stages = 1): Promise<string> {
	const res = await as(server, "pipeline-owner").post("/api/v1/pipelines", {
		name: `quota-${randomBytes(3).toString("hex")}`,
		stages: Array.from({ length: stages }, (_, i) => ({ name: `s${i}`, type: "processing", required_capabilities: ["nobody-has-this"] })),
		dependencies: []
	});
	expect(res.status).toBe(201);
	return res.body.pipeline_id;
}

function tasksOf(server: TestServer): EntityStore<Task> {
	return (server.broker.getLocalService("tasks") as unknown as { store: EntityStore<Task> }).store;
}

const stored = (server: TestServer, sub: string) => tasksOf(server).count({ created_by: sub });
const openOf = (server: TestServer, sub: string) => tasksOf(server).count({ created_by: sub, status: { $in: ["pending", "retrying", "running"] } });

function expectQuotaRefusal(res: HttpResult, quota: "tasks_per_hour" | "open_tasks", limit: number) {
	expect(res.status).toBe(429);
	expect(res.body).toEqual({ error: { code: "QUOTA_EXCEEDED", message: expect.any(String), details: expect.objectContaining({ quota, limit, remaining: 0 }) } });
	expect(res.headers.get("x-quota-limit")).toBe(String(limit));
	expect(res.headers.get("x-quota-remaining")).toBe("0");
	const retryAfter = Number(res.headers.get("retry-after"));
	expect(retryAfter).toBe(res.body.error.details.retry_after_s);
	return retryAfter;
}

describe("TASK_QUOTA_PER_HOUR on one node", () => {
	let server: TestServer;
	let pipelineId: string;
	beforeAll(async () => {
		server = await startServer({ TASK_QUOTA_PER_HOUR: "4", HEALTH_CHECK_INTERVAL_MS: "60000" });
		pipelineId = await waitingPipeline(server);
	});
	afterAll(() => server.stop());

	test("the 5th task in the hour is 429 QUOTA_EXCEEDED with Retry-After and X-Quota-*, and stores nothing", async () => {
		const ann = as(server, "ann");
		const admitted = [];
		for (let i = 0; i < 4; i++) admitted.push(await submit(ann));
		expect(statuses(admitted)).toEqual([201, 201, 201, 201]);
		expect(admitted.map(r => r.headers.get("x-quota-limit"))).toEqual(["4", "4", "4", "4"]);
		expect(admitted.map(r => r.headers.get("x-quota-remaining"))).toEqual(["3", "2", "1", "0"]);
		const refused = await submit(ann, { "Idempotency-Key": "after-the-budget" });
		const retryAfter = expectQuotaRefusal(refused, "tasks_per_hour", 4);
		// Until the subject's hour, which began with its first submission, is over.
		expect(retryAfter).toBeGreaterThan(3500);
		expect(retryAfter).toBeLessThanOrEqual(3600);
		expect(await stored(server, "ann")).toBe(4);
		// Refused again: a refusal spends nothing, and the key made nothing.
		expectQuotaRefusal(await submit(ann, { "Idempotency-Key": "after-the-budget" }), "tasks_per_hour", 4);
		expect(await stored(server, "ann")).toBe(4);
	});

	test("task submissions and pipeline executions share one budget; the run's stage tasks spend none", async () => {
		const ben = as(server, "ben");
		expect((await execute(ben, pipelineId)).status).toBe(202);
		expect((await submit(ben)).status).toBe(201);
		const run = await execute(ben, pipelineId);
		expect(run.status).toBe(202);
		expect(run.headers.get("x-quota-remaining")).toBe("1");
		expect((await submit(ben)).status).toBe(201);
		// Two stage tasks were made for ben's runs and count nothing: his four submissions spent the four.
		expect(await stored(server, "ben")).toBe(4);
		expectQuotaRefusal(await execute(ben, pipelineId), "tasks_per_hour", 4);
		expectQuotaRefusal(await submit(ben), "tasks_per_hour", 4);
		expect(await stored(server, "ben")).toBe(4);
	});

	test("another subject is not affected", async () => {
		const ann = as(server, "ann");
		expect((await submit(ann)).status).toBe(429);
		const cleo = await submit(as(server, "cleo"));
		expect(cleo.status).toBe(201);
		expect(cleo.headers.get("x-quota-remaining")).toBe("3");
	});

	test("an Idempotency-Key's duplicate answers with the same task and is not counted, even once the budget is spent", async () => {
		const dee = as(server, "dee");
		const first = await submit(dee, { "Idempotency-Key": "k1" });
		expect(first.status).toBe(201);
		const again = await submit(dee, { "Idempotency-Key": "k1" });
		expect(again.body.task_id).toBe(first.body.task_id);
		const run = await dee.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: {} }, { "Idempotency-Key": "r1" });
		const runAgain = await dee.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: {} }, { "Idempotency-Key": "r1" });
		expect(runAgain.body.run_id).toBe(run.body.run_id);
		// k1 and r1 spent two; two more fit.
		expect(statuses([await submit(dee), await submit(dee)])).toEqual([201, 201]);
		expect((await submit(dee)).status).toBe(429);
		expect((await submit(dee, { "Idempotency-Key": "k1" })).body.task_id).toBe(first.body.task_id);
		// Concurrent duplicates of a new key: one task, one submission spent.
		const eve = as(server, "eve");
		const same = await Promise.all(Array.from({ length: 6 }, () => submit(eve, { "Idempotency-Key": "burst" })));
		expect(new Set(same.map(r => r.body.task_id)).size).toBe(1);
		expect(statuses([await submit(eve), await submit(eve), await submit(eve), await submit(eve)])).toEqual([201, 201, 201, 429]);
	});

	test("the engine's own calls are not counted: a trusted node's tasks.create spends no one's budget", async () => {
		for (let i = 0; i < 6; i++) await server.broker.call("tasks.create", WAITING);
		expect((await submit(as(server, "fay"))).status).toBe(201);
	});
});

describe("MAX_OPEN_TASKS_PER_SUBJECT on one node", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({ MAX_OPEN_TASKS_PER_SUBJECT: "3", HEALTH_CHECK_INTERVAL_MS: "60000" })));
	afterAll(() => server.stop());

	test("with tasks that wait, the 4th open task is refused; cancelling one frees a slot", async () => {
		const gil = as(server, "gil");
		const admitted = [await submit(gil), await submit(gil), await submit(gil)];
		expect(statuses(admitted)).toEqual([201, 201, 201]);
		expect(admitted.map(r => r.headers.get("x-quota-remaining"))).toEqual(["2", "1", "0"]);
		expect(expectQuotaRefusal(await submit(gil), "open_tasks", 3)).toBe(OPEN_TASKS_RETRY_AFTER_S);
		expect(await stored(server, "gil")).toBe(3);
		// another subject is not affected
		expect((await submit(as(server, "hal"))).status).toBe(201);
		expect((await gil.post(`/api/v1/tasks/${admitted[0].body.task_id}/cancel`)).status).toBe(200);
		expect((await submit(gil)).status).toBe(201);
		expect((await submit(gil)).status).toBe(429);
		expect(await openOf(server, "gil")).toBe(3);
	});

	test("retrying a cancelled task opens it again: the open-task limit admits it like a submission", async () => {
		const kim = as(server, "kim");
		const admitted = [await submit(kim), await submit(kim), await submit(kim)];
		const first = admitted[0].body.task_id;
		expect((await kim.post(`/api/v1/tasks/${first}/cancel`)).status).toBe(200);
		expect((await submit(kim)).status).toBe(201);
		// Three open again: the cancelled one may not come back, and stays cancelled.
		expectQuotaRefusal(await kim.post(`/api/v1/tasks/${first}/retry`), "open_tasks", 3);
		expect((await kim.get(`/api/v1/tasks/${first}`)).body.status).toBe("cancelled");
		const bulk = await kim.post("/api/v1/tasks/bulk", { action: "retry", filter: { status: "cancelled", type: WAITING.type } });
		expect(bulk.body.changed).toBe(0);
		expect((await kim.post(`/api/v1/tasks/${admitted[1].body.task_id}/cancel`)).status).toBe(200);
		const retried = await kim.post(`/api/v1/tasks/${first}/retry`);
		expect([retried.status, retried.body.status]).toEqual([200, "pending"]);
		expect(await openOf(server, "kim")).toBe(3);
	});

	test("20 submissions at once with a limit of 3 (here 5 would do as well): exactly the limit is admitted", async () => {
		const ivy = as(server, "ivy");
		const results = await Promise.all(Array.from({ length: 20 }, () => submit(ivy)));
		expect(results.filter(r => r.status === 201)).toHaveLength(3);
		expect(results.filter(r => r.status === 429 && r.body.error.code === "QUOTA_EXCEEDED")).toHaveLength(17);
		expect(await stored(server, "ivy")).toBe(3);
	});

	test("a run's stage tasks are never refused, and count toward its executor's open tasks", async () => {
		const jon = as(server, "jon");
		expect(statuses([await submit(jon), await submit(jon)])).toEqual([201, 201]);
		// Two open tasks of a limit of three, and a run of three parallel stages: all three start.
		const run = await execute(jon, await waitingPipeline(server, 3));
		expect(run.status).toBe(202);
		expect(await openOf(server, "jon")).toBe(5);
		expectQuotaRefusal(await submit(jon), "open_tasks", 3);
		// Cancelling the run closes its stage tasks: jon has room again.
		expect((await jon.post(`/api/v1/pipelines/${run.body.pipeline_id}/runs/${run.body.run_id}/cancel`)).status).toBe(200);
		expect((await submit(jon)).status).toBe(201);
	});
});

describe("quotas off (0, the default)", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({ TASK_QUOTA_PER_HOUR: "0", MAX_OPEN_TASKS_PER_SUBJECT: "0", HEALTH_CHECK_INTERVAL_MS: "60000" })));
	afterAll(() => server.stop());

	test("any number of submissions, no X-Quota-* headers", async () => {
		const kim = as(server, "kim");
		const results = await Promise.all(Array.from({ length: 25 }, () => submit(kim)));
		expect(results.every(r => r.status === 201)).toBe(true);
		expect(results.some(r => r.headers.has("x-quota-limit"))).toBe(false);
		expect(await stored(server, "kim")).toBe(25);
	});
});

describe("Redis unreachable on one node", () => {
	let server: TestServer;
	beforeAll(async () => {
		server = await startServer({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, TASK_QUOTA_PER_HOUR: "3", MAX_OPEN_TASKS_PER_SUBJECT: "2", HEALTH_CHECK_INTERVAL_MS: "60000" });
	});
	afterAll(() => server.stop());

	test("both quotas still hold, counted on this node, and submissions are answered at once", async () => {
		const lou = as(server, "lou");
		const started = Date.now();
		const concurrent = await Promise.all(Array.from({ length: 6 }, () => submit(lou)));
		expect(statuses(concurrent).filter(s => s === 201)).toHaveLength(2);
		const first = concurrent.find(r => r.status === 201)!;
		expect((await lou.post(`/api/v1/tasks/${first.body.task_id}/cancel`)).status).toBe(200);
		expect((await submit(lou)).status).toBe(201);
		expect((await lou.post(`/api/v1/tasks/${concurrent.filter(r => r.status === 201)[1].body.task_id}/cancel`)).status).toBe(200);
		expectQuotaRefusal(await submit(lou), "tasks_per_hour", 3);
		expect(Date.now() - started).toBeLessThan(5000);
	});
});

describeWith(POSTGRES, NATS, REDIS)("two nodes over NATS sharing PostgreSQL and Redis", () => {
	const HOURLY = 8;
	const OPEN = 5;
	let db: TestDatabase;
	let nodes: TestServer[] = [];
	let pipelineId: string;
	const namespace = `quotas-${randomBytes(4).toString("hex")}`;
	let env: Record<string, string>;

	beforeAll(async () => {
		db = await createTestDatabase();
		env = {
			TRANSPORTER: `nats://${NATS.host}:${NATS.port}`,
			NAMESPACE: namespace,
			DATABASE_URL: db.url,
			REDIS_URL: `redis://${REDIS.host}:${REDIS.port}`,
			TASK_QUOTA_PER_HOUR: String(HOURLY),
			MAX_OPEN_TASKS_PER_SUBJECT: String(OPEN),
			RATE_LIMIT_PER_MINUTE: "100000",
			HEALTH_CHECK_INTERVAL_MS: "60000"
		};
		// One after the other: the first creates the tables.
		const first = await startServer({ ...env, NODE_ID: `${namespace}-a` });
		const second = await startServer({ ...env, NODE_ID: `${namespace}-b` });
		nodes = [first, second];
		await first.broker.waitForServices({ name: "tasks" } as never);
		pipelineId = await waitingPipeline(first);
	}, 60_000);
	afterAll(async () => {
		for (const node of nodes.reverse()) await node.stop();
		await db?.drop();
		// This run's keys only (its namespace): the machine's Redis is shared.
		const redis = new Redis(`redis://${REDIS.host}:${REDIS.port}`);
		const keys = await redis.keys(`${namespace}-*`);
		if (keys.length) await redis.del(...keys);
		redis.disconnect();
	});

	const on = (i: number, sub: string) => as(nodes[i % 2], sub);

	test("submissions alternating between both gateways share one hourly budget", async () => {
		const results: HttpResult[] = [];
		for (let i = 0; i < HOURLY + 2; i++) {
			const c = on(i, "mia");
			const res = i % 3 === 2 ? await execute(c, pipelineId) : await submit(c);
			results.push(res);
			// Keep mia under the open-task limit: this test is about the hour.
			if (res.status === 201) expect((await c.post(`/api/v1/tasks/${res.body.task_id}/cancel`)).status).toBe(200);
			if (res.status === 202) expect((await c.post(`/api/v1/pipelines/${pipelineId}/runs/${res.body.run_id}/cancel`)).status).toBe(200);
		}
		expect(results.slice(0, HOURLY).every(r => r.status === 201 || r.status === 202)).toBe(true);
		expect(results.slice(0, HOURLY).map(r => r.headers.get("x-quota-remaining"))).toContain("0");
		for (const refused of results.slice(HOURLY)) expectQuotaRefusal(refused, "tasks_per_hour", HOURLY);
	});

	test("20 submissions at once through both gateways: never more open tasks than the limit", async () => {
		const results = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(on(i, "ned"))));
		expect(results.filter(r => r.status === 201)).toHaveLength(OPEN);
		for (const refused of results.filter(r => r.status !== 201)) expect(refused.body.error.code).toBe("QUOTA_EXCEEDED");
		expect(await openOf(nodes[0], "ned")).toBe(OPEN);
		expect(await openOf(nodes[1], "ned")).toBe(OPEN);
	});

	test("a gateway-only node answers with the figures the core node's quotas gave, over the transporter", async () => {
		const gateway = await startServer({ ...env, NODE_ID: `${namespace}-gw` }, ["api"]);
		try {
			await gateway.broker.waitForServices(["tasks"]);
			const c = as(gateway, "quin");
			const first = await submit(c);
			expect(first.status).toBe(201);
			expect([first.headers.get("x-quota-limit"), first.headers.get("x-quota-remaining")]).toEqual([String(OPEN), String(OPEN - 1)]);
			for (let i = 1; i < OPEN; i++) expect((await submit(c)).status).toBe(201);
			expectQuotaRefusal(await submit(c), "open_tasks", OPEN);
		} finally {
			await gateway.stop();
		}
	});

	test("20 pipeline executions at once through both gateways: exactly the hourly budget is admitted", async () => {
		const results = await Promise.all(Array.from({ length: 20 }, (_, i) => execute(on(i, "ora"), pipelineId)));
		expect(results.filter(r => r.status === 202)).toHaveLength(HOURLY);
		for (const refused of results.filter(r => r.status !== 202)) expectQuotaRefusal(refused, "tasks_per_hour", HOURLY);
		// Another subject is not affected.
		expect((await submit(on(1, "pat"))).status).toBe(201);
	});
});
