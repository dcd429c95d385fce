/** The embedded store is files under DATA_DIR: a restart keeps every agent. */
import { tempDir } from "../support/broker";
import { client } from "../support/http";
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
