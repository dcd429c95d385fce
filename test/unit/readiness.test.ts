/** /ready names a node whose services are still starting, and is ready once they all have. */
import { ServiceBroker } from "moleculer";
import { checkReadiness } from "../../src/gateway/readiness";
import { MemoryRateLimiter } from "../../src/gateway/rate-limit/rate-limiter";
import { testConfig } from "../support/broker";

test("not ready while the node's services start; ready once they have", async () => {
	const config = testConfig();
	const broker = new ServiceBroker({ logger: false });
	let release!: () => void;
	const slowStart = new Promise<void>(r => (release = r));
	broker.createService({ name: "agents", actions: { ping: () => ({ ok: true }) } });
	broker.createService({ name: "audit", started: () => slowStart });
	const starting = broker.start();
	await new Promise(r => setTimeout(r, 50));
	const early = await checkReadiness(broker, config, new MemoryRateLimiter(10));
	expect(early).toEqual({ ready: false, checks: expect.objectContaining({ services: "starting" }) });
	release();
	await starting;
	expect(await checkReadiness(broker, config, new MemoryRateLimiter(10))).toEqual({ ready: true, checks: { store: "ok" } });
	await broker.stop();
});
