/**
 * `/ready` while a node starts: its gateway listens as soon as the api service started, before the
 * others finished (a tasks service loading a large NeDB file, say). Until every service of the node
 * has started, the node is not ready.
 */
import { localGatewayPort, localGatewayUrl } from "../../src/gateway/local-gateway";
import { createTestBroker, testConfig } from "../support/broker";
import { request, waitFor } from "../support/http";
import { loadServiceSchema } from "../support/server";

test("/ready answers 503 (services: starting) until every service of the node has started, then 200", async () => {
	const config = testConfig();
	const broker = createTestBroker(config);
	for (const name of ["api", "agents"]) broker.createService(loadServiceSchema(name));
	let release!: () => void;
	const gate = new Promise<void>(resolve => (release = resolve));
	broker.createService({ name: "slow-start", started: () => gate });
	const starting = broker.start();
	try {
		await waitFor(async () => localGatewayPort(broker) !== undefined);
		const url = localGatewayUrl(broker, config);
		// The store answers by now; only the slow service holds the node back.
		const before = await waitFor(async () => {
			const res = await request(url, "GET", "/ready").catch(() => null);
			return res?.body?.checks?.store === "ok" ? res : undefined;
		});
		expect(before.status).toBe(503);
		expect(before.body).toMatchObject({ status: "not_ready", checks: { services: "starting", store: "ok" } });
		release();
		await starting;
		const after = await request(url, "GET", "/ready");
		expect(after.status).toBe(200);
		expect(after.body).toMatchObject({ status: "ready", checks: { services: "ok", store: "ok" } });
	} finally {
		release();
		await starting.catch(() => undefined);
		await broker.stop();
	}
});
