/**
 * TASK_RETENTION_DAYS and RUN_RETENTION_DAYS over real HTTP with real HTTP agents: what a client
 * sees go (404) and stay, the NeDB file rewritten without what went, and the metrics' counts by
 * status following while the counters stay. Retentions of 0.00005 days (4.3 s) make the sweep run
 * every 1.08 s (a quarter of the retention), so each test waits a few seconds, never a minute.
 * On NeDB (and its file) and on PostgreSQL (its finished_at column, written by the group commit).
 */
import fs from "node:fs";
import path from "node:path";
import { client, waitFor } from "../support/http";
import { complete, postJson, silent, startHttpAgent, type AgentScript, type HttpAgent } from "../support/http-agent";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { startServer, type TestServer } from "../support/server";
import { describeWith, POSTGRES } from "../support/services";
import type { TaskDelivery } from "../../src/types";

const RETENTION_DAYS = "0.00005";
const RETENTION_MS = 4320;
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const stageIndex = (d: TaskDelivery) => (d.payload.stage as { index: number }).index;

for (const backend of ["nedb", "postgres"] as const) describeWith(...(backend === "postgres" ? [POSTGRES] : []))(`retention on ${backend}`, () => {
	let server: TestServer;
	let database: TestDatabase | undefined;
	let operator: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;
	const agents: HttpAgent[] = [];

	/** Takes tasks of type `capability`, and any type that requires `capability` (a stage tagged with it). */
	async function agentFor(capability: string, script: AgentScript = complete()) {
		const agent = await startHttpAgent();
		agents.push(agent);
		agent.script = script;
		const res = await operator.post("/api/v1/agents/register", {
			name: capability, type: "worker", capabilities: ["task-execution", capability], endpoints: { task: agent.endpoints.task }, resources: { cpu: 4 }
		});
		expect(res.status).toBe(201);
		return agent;
	}

	const taskStatus = async (id: string) => (await viewer.get(`/api/v1/tasks/${id}`)).status;
	const task = async (id: string) => (await viewer.get(`/api/v1/tasks/${id}`)).body;
	const until = (id: string, status: string) => waitFor(async () => ((await task(id)).status === status ? task(id) : undefined));
	const gone = (probe: () => Promise<number>) => waitFor(async () => (await probe()) === 404, 15_000, 100);
	const submit = async (type: string, required_capabilities: string[] = [type]) => {
		const res = await operator.post("/api/v1/tasks", { type, required_capabilities });
		expect(res.status).toBe(201);
		return res.body.task_id as string;
	};

	beforeAll(async () => {
		database = backend === "postgres" ? await createTestDatabase() : undefined;
		server = await startServer({
			TASK_RETENTION_DAYS: RETENTION_DAYS, RUN_RETENTION_DAYS: RETENTION_DAYS, HEALTH_CHECK_INTERVAL_MS: "60000", ...(database ? { DATABASE_URL: database.url } : {})
		});
		operator = client(server.url, server.token(["operator"], "olive"));
		viewer = client(server.url, server.token(["viewer"], "vic"));
	});
	afterAll(async () => {
		await server?.stop();
		for (const agent of agents) await agent.close();
		await database?.drop();
	});

	test("finished tasks older than TASK_RETENTION_DAYS answer 404; a fresh finished one and an old waiting one stay; a NeDB file is rewritten without them", async () => {
		await agentFor("retention-task");
		const old = await submit("retention-task");
		await until(old, "completed");
		const waiting = await submit("retention-nobody");
		const cancelled = await submit("retention-nobody");
		expect((await operator.post(`/api/v1/tasks/${cancelled}/cancel`)).status).toBe(200);
		const file = path.join(server.config.dataDir, "tasks.db");
		const sizeBefore = backend === "nedb" ? fs.statSync(file).size : 0;

		// Finishes well inside the retention when `old` expires.
		await sleep(RETENTION_MS / 2);
		const fresh = await submit("retention-task");
		await until(fresh, "completed");

		await gone(() => taskStatus(old));
		await gone(() => taskStatus(cancelled));
		expect(await task(fresh)).toMatchObject({ task_id: fresh, status: "completed" });
		expect(await task(waiting)).toMatchObject({ task_id: waiting, status: "pending" });

		if (backend === "nedb") {
			// Compacted: one line per stored task, none of the removed ones, smaller than before the sweep.
			const idsInFile = () => fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(line => JSON.parse(line)._id as string);
			await waitFor(async () => !idsInFile().includes(old));
			expect(idsInFile().sort()).toEqual([fresh, waiting].sort());
			expect(fs.statSync(file).size).toBeLessThan(sizeBefore);
		}

		// The fresh one goes in its turn; the waiting one, older than the retention three times over by then, stays.
		await gone(() => taskStatus(fresh));
		expect(await task(waiting)).toMatchObject({ status: "pending" });
		expect((await viewer.get("/api/v1/tasks?limit=1")).body.total).toBe(1);
	}, 60_000);

	test("the metrics' tasks by status drop with the removal, at once; the counters of what happened stay", async () => {
		// The tasks of the test above: two completed and one cancelled, all removed by now.
		const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
		const value = (text: string, family: string, status: string) =>
			Number(new RegExp(`^${family}\\{[^}]*status="${status}"[^}]*\\} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
		const text = await waitFor(async () => {
			const t = await scrape();
			return value(t, "mcp_tasks_by_status", "completed") === 0 && value(t, "mcp_tasks_by_status", "pending") === 1 ? t : undefined;
		}, 5000);
		expect(value(text, "mcp_tasks_by_status", "cancelled")).toBe(0);
		expect(value(text, "mcp_tasks_total", "completed")).toBe(2);
		expect(value(text, "mcp_tasks_total", "cancelled")).toBe(1);
	});

	test("a finished run older than RUN_RETENTION_DAYS goes with its stage tasks; a run still going keeps its finished stage task; a fresh run stays", async () => {
		await agentFor("retention-done");
		const holding = await agentFor("retention-hold", d => (stageIndex(d) === 0 ? complete()(d) : silent(d)));
		const pipeline = async (tag: string) => {
			const res = await operator.post("/api/v1/pipelines", {
				name: `${tag}-pipeline`,
				stages: [
					{ name: "ingest", type: "data-ingestion", required_capabilities: [tag] },
					{ name: "transform", type: "transformation", required_capabilities: [tag] }
				]
			});
			expect(res.status).toBe(201);
			return res.body.pipeline_id as string;
		};
		const execute = async (pipelineId: string) => {
			const res = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, {});
			expect(res.status).toBe(202);
			return res.body.run_id as string;
		};
		const runStatus = async (pipelineId: string, runId: string) => (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).status;
		const getRun = async (pipelineId: string, runId: string) => (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;
		const untilRun = (pipelineId: string, runId: string, status: string) =>
			waitFor(async () => ((await getRun(pipelineId, runId)).status === status ? getRun(pipelineId, runId) : undefined));
		const taskIds = (run: { stages: Array<{ task_id: string | null }> }) => run.stages.map(s => s.task_id!);

		const done = await pipeline("retention-done");
		const hold = await pipeline("retention-hold");
		// Its first stage finishes first of all: by the time the finished run goes, that task is older than both retentions.
		const going = await execute(hold);
		const goingDelivery = await waitFor(async () => holding.deliveries.find(d => stageIndex(d) === 1));
		const finished = await untilRun(done, await execute(done), "completed");
		const finishedTasks = taskIds(finished);
		expect(finishedTasks).toHaveLength(2);

		await sleep(RETENTION_MS / 2);
		const fresh = await untilRun(done, await execute(done), "completed");

		await gone(() => runStatus(done, finished.run_id));
		for (const id of finishedTasks) await gone(() => taskStatus(id));
		expect(await getRun(done, fresh.run_id)).toMatchObject({ status: "completed" });
		for (const id of taskIds(fresh)) expect(await taskStatus(id)).toBe(200);
		// The fresh run goes in its turn; sweeps have run many times since the running run's first task expired.
		await gone(() => runStatus(done, fresh.run_id));
		const stillGoing = await getRun(hold, going);
		expect(stillGoing).toMatchObject({ status: "running" });
		expect(await task(stillGoing.stages[0].task_id)).toMatchObject({ status: "completed" });
		expect(await task(goingDelivery.task_id)).toMatchObject({ status: "running" });

		// Once it finishes, it goes in its turn, stage tasks and all; the pipeline definitions stay.
		expect(await postJson(goingDelivery.callbacks.complete, goingDelivery.callback_token, { result: { ok: true } })).toBe(200);
		const ended = await untilRun(hold, going, "completed");
		await gone(() => runStatus(hold, going));
		for (const id of taskIds(ended)) await gone(() => taskStatus(id));
		expect((await viewer.get(`/api/v1/pipelines/${hold}`)).status).toBe(200);
		expect((await viewer.get(`/api/v1/pipelines/${done}`)).status).toBe(200);
	}, 90_000);
});
