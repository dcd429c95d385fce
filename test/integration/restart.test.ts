/** The embedded store is files under DATA_DIR: a restart keeps every agent. */
import { tempDir } from "../support/broker";
import { client, waitFor } from "../support/http";
import { startHttpAgent } from "../support/http-agent";
import { startServer } from "../support/server";

test("agents survive a restart on the embedded NeDB files", async () => {
	const DATA_DIR = tempDir();
	const first = await startServer({ DATA_DIR });
	const operator = client(first.url, first.token(["operator"]));
	const registered = [];
	for (const name of ["keep-a", "keep-b", "keep-c"])
		registered.push((await operator.post("/api/v1/agents/register", { name, type: "worker", capabilities: ["x"] })).body);
	await operator.post(`/api/v1/agents/${registered[1].id}/drain`);
	await first.stop();

	const second = await startServer({ DATA_DIR });
	try {
		const res = await client(second.url, second.token(["viewer"])).get("/api/v1/agents");
		expect(res.body.agents.map((a: { id: string; status: string }) => [a.id, a.status])).toEqual([
			[registered[0].id, "active"],
			[registered[1].id, "draining"],
			[registered[2].id, "active"]
		]);
	} finally {
		await second.stop();
	}
});

test("tasks survive a restart: pending ones are dispatched again, finished ones keep their result", async () => {
	const DATA_DIR = tempDir();
	const first = await startServer({ DATA_DIR });
	const operator = client(first.url, first.token(["operator"]));
	const waiting = (await operator.post("/api/v1/tasks", { type: "after-restart", priority: "high" })).body;
	const cancelled = (await operator.post("/api/v1/tasks", { type: "after-restart" })).body;
	await operator.post(`/api/v1/tasks/${cancelled.task_id}/cancel`);
	await first.stop();

	const second = await startServer({ DATA_DIR });
	const agent = await startHttpAgent();
	try {
		const op2 = client(second.url, second.token(["operator"]));
		await op2.post("/api/v1/agents/register", { name: "late", type: "worker", capabilities: ["after-restart"], endpoints: { task: agent.endpoints.task } });
		const done = await waitFor(async () => {
			const t = (await op2.get(`/api/v1/tasks/${waiting.task_id}`)).body;
			return t.status === "completed" ? t : undefined;
		});
		expect(done).toMatchObject({ attempt: 1, result: { ok: true } });
		expect((await op2.get(`/api/v1/tasks/${cancelled.task_id}`)).body.status).toBe("cancelled");
		expect(agent.deliveries.map(d => d.task_id)).toEqual([waiting.task_id]);
	} finally {
		await agent.close();
		await second.stop();
	}
});
