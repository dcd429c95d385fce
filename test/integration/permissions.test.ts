/**
 * Resource-level permissions over real HTTP: tasks, pipelines and runs record who made them;
 * cancelling, retrying and removing need the creator, an admin, or a pipeline's `permissions.manage`;
 * `permissions.execute` narrows who may execute; stage tasks follow their pipeline; viewers read
 * everything. And through the REPL's own commands, which act with the cluster's own (admin) rights.
 */
import { randomBytes } from "node:crypto";
import { runActionCommand } from "../../src/platform/repl-commands";
import { client, waitFor } from "../support/http";
import { complete, fail, silent, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";

describe("resource-level permissions", () => {
	let server: TestServer;
	const agents: HttpAgent[] = [];
	const as = (sub: string, roles: Array<"viewer" | "operator" | "admin"> = ["operator"]) => client(server.url, server.token(roles, sub));
	let alice: ReturnType<typeof client>;
	let bob: ReturnType<typeof client>;
	let carol: ReturnType<typeof client>;
	let admin: ReturnType<typeof client>;
	let viewer: ReturnType<typeof client>;

	/** An agent for stages tagged `tag` only. */
	async function agentFor(tag: string, script = complete()) {
		const agent = await startHttpAgent();
		agent.script = script;
		agents.push(agent);
		const res = await admin.post("/api/v1/agents/register", { name: `perm-${tag}`, type: "worker", capabilities: ["task-execution", tag], endpoints: { task: agent.endpoints.task }, resources: { cpu: 4 } });
		expect(res.status).toBe(201);
		return agent;
	}

	async function pipelineOf(owner: ReturnType<typeof client>, tag: string, permissions?: object) {
		const res = await owner.post("/api/v1/pipelines", {
			name: `perm-${tag}-${randomBytes(3).toString("hex")}`,
			stages: [{ name: "only", type: "processing", required_capabilities: [tag], retry_count: 0 }],
			...(permissions ? { permissions } : {})
		});
		expect(res.status).toBe(201);
		return res.body.pipeline_id as string;
	}

	const runOf = async (pipelineId: string, runId: string) => (await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).body;

	beforeAll(async () => {
		server = await startServer({ RETRY_BASE_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "50", HEALTH_CHECK_INTERVAL_MS: "60000" });
		alice = as("alice");
		bob = as("bob");
		carol = as("carol");
		admin = as("root", ["admin"]);
		viewer = as("vic", ["viewer"]);
	});
	afterAll(async () => {
		await server.stop();
		for (const a of agents) await a.close();
	});

	test("a task records its creator; only the creator or an admin may cancel it; viewers read it", async () => {
		const created = await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["nobody-has-this"] });
		expect(created.status).toBe(201);
		expect(created.body.created_by).toBe("alice");
		const id = created.body.task_id;
		expect((await viewer.get(`/api/v1/tasks/${id}`)).body).toMatchObject({ created_by: "alice", status: "pending" });

		const refused = await bob.post(`/api/v1/tasks/${id}/cancel`);
		expect(refused.status).toBe(403);
		expect(refused.body.error.code).toBe("FORBIDDEN");
		expect((await viewer.get(`/api/v1/tasks/${id}`)).body.status).toBe("pending");
		expect((await alice.post(`/api/v1/tasks/${id}/cancel`)).status).toBe(200);

		const other = (await alice.post("/api/v1/tasks", { type: "processing", required_capabilities: ["nobody-has-this"] })).body.task_id;
		expect((await admin.post(`/api/v1/tasks/${other}/cancel`)).status).toBe(200);
		expect((await viewer.get(`/api/v1/tasks/${other}`)).body.status).toBe("cancelled");
	});

	test("a pipeline without permissions: every operator may execute; its runs belong to their executor", async () => {
		await agentFor("open", silent);
		const pipelineId = await pipelineOf(alice, "open");
		expect((await viewer.get(`/api/v1/pipelines/${pipelineId}`)).body.created_by).toBe("alice");
		const run = await bob.post(`/api/v1/pipelines/${pipelineId}/execute`, {});
		expect(run.status).toBe(202);
		expect((await runOf(pipelineId, run.body.run_id)).created_by).toBe("bob");
		// The pipeline's creator is not the run's: alice may not cancel bob's run; bob and admins may.
		expect((await alice.post(`/api/v1/pipelines/${pipelineId}/runs/${run.body.run_id}/cancel`)).status).toBe(403);
		expect((await runOf(pipelineId, run.body.run_id)).status).toBe("running");
		expect((await bob.post(`/api/v1/pipelines/${pipelineId}/runs/${run.body.run_id}/cancel`)).status).toBe(200);
		const second = (await bob.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).body.run_id;
		expect((await admin.post(`/api/v1/pipelines/${pipelineId}/runs/${second}/cancel`)).status).toBe(200);
	});

	test("permissions.execute narrows who may execute; the creator and admins still may", async () => {
		await agentFor("narrow", silent);
		const pipelineId = await pipelineOf(alice, "narrow", { execute: ["carol", "role:admin"] });
		const refused = await bob.post(`/api/v1/pipelines/${pipelineId}/execute`, {});
		expect(refused.status).toBe(403);
		expect(refused.body.error.code).toBe("FORBIDDEN");
		expect((await viewer.get(`/api/v1/pipelines/${pipelineId}`)).body.runs).toEqual([]);
		for (const who of [carol, alice, admin]) expect((await who.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).status).toBe(202);
	});

	test("permissions.manage widens who may cancel and retry runs, and their stage tasks follow", async () => {
		const agent = await agentFor("managed", fail("no input", false));
		const pipelineId = await pipelineOf(alice, "managed", { manage: ["bob", "role:admin"] });
		const runId = (await alice.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).body.run_id;
		const failed = await waitFor(async () => ((await runOf(pipelineId, runId)).status === "failed" ? runOf(pipelineId, runId) : undefined));
		const stageTask = failed.stages[0].task_id;
		expect((await viewer.get(`/api/v1/tasks/${stageTask}`)).body.created_by).toBe("alice");

		expect((await carol.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/retry`)).status).toBe(403);
		agent.script = silent;
		const retried = await bob.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/retry`);
		expect(retried.status).toBe(202);
		const running = await waitFor(async () => {
			const run = await runOf(pipelineId, runId);
			return run.stages[0].status === "running" && run.stages[0].task_id !== stageTask ? run : undefined;
		});
		const secondTask = running.stages[0].task_id;
		// The stage task belongs to the run's executor and the pipeline's managers, not to any operator.
		expect((await carol.post(`/api/v1/tasks/${secondTask}/cancel`)).status).toBe(403);
		expect((await bob.post(`/api/v1/tasks/${secondTask}/cancel`)).status).toBe(200);
		expect((await viewer.get(`/api/v1/tasks/${secondTask}`)).body.status).toBe("cancelled");
	});

	test("removing a pipeline: creator, admin or manager; refused while a run goes; its runs go with it", async () => {
		await agentFor("removal", silent);
		const pipelineId = await pipelineOf(alice, "removal", { manage: ["carol"] });
		const runId = (await alice.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).body.run_id;
		expect((await bob.delete(`/api/v1/pipelines/${pipelineId}`)).status).toBe(403);
		const busy = await carol.delete(`/api/v1/pipelines/${pipelineId}`);
		expect(busy.status).toBe(409);
		expect(busy.body.error.code).toBe("CONFLICT");
		expect((await alice.post(`/api/v1/pipelines/${pipelineId}/runs/${runId}/cancel`)).status).toBe(200);
		const removed = await carol.delete(`/api/v1/pipelines/${pipelineId}`);
		expect(removed.status).toBe(200);
		expect(removed.body).toMatchObject({ pipeline_id: pipelineId, removed: true, runs_removed: 1 });
		expect((await viewer.get(`/api/v1/pipelines/${pipelineId}`)).status).toBe(404);
		expect((await viewer.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`)).status).toBe(404);
	});

	test("a bad permissions field is 422 naming it, and nothing is stored", async () => {
		const before = (await viewer.get("/api/v1/pipelines")).body.total;
		const res = await alice.post("/api/v1/pipelines", {
			name: "bad-permissions",
			stages: [{ name: "a", type: "processing" }],
			permissions: { execute: ["role:superuser", 7], own: ["x"] }
		});
		expect(res.status).toBe(422);
		expect(res.body.error.details.map((d: { field: string }) => d.field)).toEqual(["permissions.execute[0]", "permissions.execute[1]", "permissions.own"]);
		expect((await viewer.get("/api/v1/pipelines")).body.total).toBe(before);
	});

	test("the REPL's cancel and retry act with the cluster's own rights, on anyone's run", async () => {
		const agent = await agentFor("repl", silent);
		const pipelineId = await pipelineOf(alice, "repl");
		const runId = (await alice.post(`/api/v1/pipelines/${pipelineId}/execute`, {})).body.run_id;
		await waitFor(async () => agent.deliveries.length > 0);
		expect(await runActionCommand(server.broker, "cancel", pipelineId, runId)).toContain("cancelled");
		expect((await runOf(pipelineId, runId)).status).toBe("cancelled");
		expect(await runActionCommand(server.broker, "retry", pipelineId, runId)).toContain(runId);
		expect((await runOf(pipelineId, runId)).status).toBe("running");
	});
});
