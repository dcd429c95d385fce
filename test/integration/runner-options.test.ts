/**
 * Nodes as `npm start` runs them (moleculer-runner over dist/): the broker options the config
 * builds reach the broker, though moleculer-runner overwrites options from same-named environment
 * variables (TRANSPORTER would leave only the URL, without the NATS credentials or TLS).
 */
import { randomBytes } from "node:crypto";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { ensureBuilt, freePort, startNatsServer, startNode, type ManagedProcess } from "../support/cluster";
import { request, waitFor } from "../support/http";
import { describeWith, NATS_SERVER } from "../support/services";

jest.setTimeout(60_000);

describeWith(NATS_SERVER)("moleculer-runner and the transporter options", () => {
	const processes: ManagedProcess[] = [];
	beforeAll(() => ensureBuilt());
	afterAll(async () => {
		for (const p of processes) await p.kill();
	});

	test("a NATS server behind a token: the node gets on with TRANSPORTER_TOKEN", async () => {
		const token = randomBytes(12).toString("hex");
		const nats = await startNatsServer(undefined, ["--auth", token]);
		processes.push(nats);
		const port = await freePort();
		const node = startNode("token-node", { ...TEST_SECRETS, TRANSPORTER: nats.url, TRANSPORTER_TOKEN: token, SERVICES: "api", SERVER_PORT: String(port), DATA_DIR: tempDir() });
		processes.push(node);
		await waitFor(async () => (await request(`http://127.0.0.1:${port}`, "GET", "/ready").catch(() => null))?.body?.checks?.transporter === "ok", 30_000).catch(err => {
			throw new Error(`${(err as Error).message}; the node said: ${node.output.join("")}`);
		});
	});
});
