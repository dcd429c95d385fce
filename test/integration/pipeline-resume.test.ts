/**
 * kill -9 in the middle of a run: the real server (moleculer-runner over dist/) dies while a stage
 * is out with an HTTP agent, comes back on the same DATA_DIR and port, and the run goes on from
 * where it was: no completed stage runs again, the held stage's late callback is taken, and the
 * results keep flowing forward.
 */
import { mintToken } from "../../src/platform/tokens";
import type { TaskDelivery } from "../../src/types";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { client, waitFor } from "../support/http";
import { ensureBuilt, freePort, startNode, type ManagedProcess } from "../support/cluster";
import { postJson, startHttpAgent, type HttpAgent } from "../support/http-agent";

jest.setTimeout(90_000);

/** The gateway listens before every service is registered: wait until the actions the test needs answer. */
async function untilServing(url: string, proc: ManagedProcess) {
	const viewer = `Bearer ${mintToken(TEST_SECRETS.JWT_SECRET, { sub: "probe", roles: ["viewer"], expiresInSec: 600 })}`;
	await waitFor(async () => {
		if (proc.process.exitCode !== null) throw new Error(`server exited early:\n${proc.output.join("")}`);
		try {
			for (const path of ["/ready", "/api/v1/pipelines", "/api/v1/tasks?limit=1", "/api/v1/agents"])
				if (!(await fetch(url + path, { headers: { Authorization: viewer } })).ok) return false;
			return true;
		} catch {
			return false;
		}
	}, 30_000, 100);
}

/** Each stage answers with its dependencies' chains plus its own index: the last one shows the whole path. */
function chainResult(d: TaskDelivery) {
	const stage = (d.payload.stage as { index: number }).index;
	const upstream = Object.values((d.payload.upstream ?? {}) as Record<string, { result: { chain: number[] } | null }>);
	const before = upstream.flatMap(entry => entry.result?.chain ?? []);
	return { chain: [...before, stage] };
}

describe("pipeline runs survive kill -9", () => {
	let agent: HttpAgent;
	let current: ManagedProcess | undefined;

	beforeAll(() => ensureBuilt());
	afterAll(async () => {
		await current?.kill();
		await agent?.close();
	});

	test("a run in flight when the server is killed continues after the restart, without re-running completed stages", async () => {
		const port = await freePort();
		const url = `http://127.0.0.1:${port}`;
		const env = {
			DATA_DIR: tempDir("mcp-resume-"),
			SERVER_PORT: String(port),
			...TEST_SECRETS,
			TRANSPORTER: "",
			NAMESPACE: `resume-${process.pid}`,
			HEALTH_CHECK_INTERVAL_MS: "60000",
			HEARTBEAT_TIMEOUT_MS: "600000",
			RETRY_BASE_DELAY_MS: "50",
			RETRY_MAX_DELAY_MS: "200"
		};
		current = startNode(`resume-${process.pid}`, env);
		await untilServing(url, current);
		const operator = client(url, mintToken(TEST_SECRETS.JWT_SECRET, { sub: "olive", roles: ["operator"], expiresInSec: 600 }));

		// Completes every stage at once, except stage 2: that one is held, and its delivery kills the server.
		agent = await startHttpAgent();
		let held: TaskDelivery | undefined;
		const killed = { done: false };
		agent.script = d => {
			if ((d.payload.stage as { index: number }).index === 2 && !held) {
				held = d;
				void current!.kill("SIGKILL");
				killed.done = true;
				return;
			}
			void postJson(d.callbacks.complete, d.callback_token, { result: chainResult(d) });
		};
		const registered = await operator.post("/api/v1/agents/register", {
			name: "resume-agent", type: "worker", capabilities: ["task-execution"], endpoints: { task: agent.endpoints.task }, resources: { cpu: 2 }
		});
		expect(registered.status).toBe(201);

		const created = await operator.post("/api/v1/pipelines", {
			name: "resume-pipeline",
			stages: [
				{ name: "ingest", type: "data-ingestion" },
				{ name: "transform", type: "transformation" },
				{ name: "analyse", type: "analysis" },
				{ name: "report", type: "output" }
			]
		});
		expect(created.status).toBe(201);
		const pipelineId = created.body.pipeline_id;
		const executed = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: { source: "memory://numbers" } });
		expect(executed.status).toBe(202);
		const runId = executed.body.run_id;

		await waitFor(async () => killed.done, 20_000);
		await current.kill();

		current = startNode(`resume-${process.pid}`, env);
		await untilServing(url, current);
		// The held task is still running (an HTTP agent may still call back), and its token is still good.
		expect(await postJson(held!.callbacks.complete, held!.callback_token, { result: chainResult(held!) })).toBe(200);

		const run = await waitFor(async () => {
			const res = await operator.get(`/api/v1/pipelines/${pipelineId}/runs/${runId}`);
			return res.body?.status === "completed" ? res.body : undefined;
		}, 20_000);
		const perStage = [0, 1, 2, 3].map(stage => agent.deliveries.filter(d => (d.payload.stage as { index: number }).index === stage).length);
		expect(perStage).toEqual([1, 1, 1, 1]);
		expect(run.completed_stages).toEqual([0, 1, 2, 3]);
		expect(run.stages[3].result).toEqual({ chain: [0, 1, 2, 3] });
		expect(run.stages.map((s: { result: unknown }) => s.result)).toEqual([{ chain: [0] }, { chain: [0, 1] }, { chain: [0, 1, 2] }, { chain: [0, 1, 2, 3] }]);
		expect(run.stages[2].task_id).toBe(held!.task_id);
	});
});
