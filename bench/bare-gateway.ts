/**
 * The reads benchmark's baseline: a bare moleculer-web gateway in a process of its own, one alias
 * per route answering the body our server gave for it (BENCH_BODIES: a JSON file of path → body).
 * No auth, rate limit, audit or metrics: what moleculer-web itself costs for the same answer.
 */
import fs from "node:fs";
import { ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";

const bodies = JSON.parse(fs.readFileSync(process.env.BENCH_BODIES!, "utf8")) as Record<string, unknown>;
const broker = new ServiceBroker({ logger: false, metrics: false });
const actions: Record<string, () => unknown> = {};
const aliases: Record<string, string> = {};
Object.entries(bodies).forEach(([path, body], i) => {
	actions[`r${i}`] = () => body;
	aliases[`GET ${path}`] = `bare.r${i}`;
});
broker.createService({ name: "bare", actions });
broker.createService({
	name: "api",
	mixins: [ApiGateway],
	settings: { port: Number(process.env.BENCH_PORT), ip: "127.0.0.1", routes: [{ path: "/", aliases, mappingPolicy: "restrict" }] }
});
void broker.start().then(() => process.send?.({ ready: true }));
process.on("disconnect", () => void broker.stop().then(() => process.exit(0)));
