/**
 * REST reads against a bare moleculer-web route answering the same body, in the same run, with
 * autocannon at 50 connections: GET /agents (20 agents), GET /tasks (the default page of 100),
 * GET /pipelines/{id} (a pipeline and its 20 runs). Ours runs as `npm start` does, on NeDB, with
 * auth, rate limit, audit and metrics on; the bare gateway (bare-gateway.ts) has none of them.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { mintToken } from "../src/platform/tokens";
import { fmt, runAsScript, type BenchResult } from "./bench-kit";
import { freePort, startServerNode } from "./processes";

const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_READ_SECONDS ?? 5);
const SECRETS = { JWT_SECRET: "bench-reads-secret-0123456789abcdef", API_KEY: "bench-reads-key" };

interface Load {
	perSec: number;
	p99: number;
	bytes: number;
}

async function load(url: string, headers: Record<string, string>): Promise<Load> {
	const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers });
	if (result.non2xx) throw new Error(`${url}: ${result.non2xx} answers were not 2xx`);
	return { perSec: result.requests.average, p99: result.latency.p99, bytes: result.throughput.average / Math.max(1, result.requests.average) };
}

async function post(url: string, body: unknown, headers: Record<string, string>): Promise<Record<string, unknown>> {
	const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
	if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
	return (await res.json()) as Record<string, unknown>;
}

export async function runReadsBench(): Promise<BenchResult> {
	const namespace = `bench-reads-${randomBytes(4).toString("hex")}`;
	const server = await startServerNode({ ...SECRETS, NAMESPACE: namespace, DATA_DIR: path.join(os.tmpdir(), namespace), RATE_LIMIT_PER_MINUTE: "100000000", HEALTH_CHECK_INTERVAL_MS: "600000" }, "reads");
	const bodiesFile = path.join(os.tmpdir(), `${namespace}-bodies.json`);
	let bare: ReturnType<typeof fork> | undefined;
	try {
		const api = `${server.url}/api/v1`;
		const auth = { authorization: `Bearer ${mintToken(SECRETS.JWT_SECRET, { sub: "bench", roles: ["operator"], expiresInSec: 3600 })}` };
		for (let i = 0; i < 20; i++)
			await post(`${api}/agents/register`, { name: `reader-${i}`, type: "worker", capabilities: ["bench-read"], endpoints: { task: `http://127.0.0.1:9/agents/${i}` } }, { "x-api-key": SECRETS.API_KEY });
		for (let i = 0; i < 100; i++) await post(`${api}/tasks`, { type: "nobody-runs-this", payload: { n: i } }, auth);
		const pipeline = await post(`${api}/pipelines`, { name: "reads", stages: [{ name: "s", type: "processing", required_capabilities: ["nobody-has-this"] }], dependencies: [] }, auth);
		for (let i = 0; i < 20; i++) await post(`${api}/pipelines/${pipeline.pipeline_id}/execute`, { input_data: { n: i } }, auth);
		const routes = ["/api/v1/agents", "/api/v1/tasks", `/api/v1/pipelines/${pipeline.pipeline_id}`];
		const bodies: Record<string, unknown> = {};
		for (const route of routes) bodies[route] = await (await fetch(`${server.url}${route}`, { headers: auth })).json();
		fs.writeFileSync(bodiesFile, JSON.stringify(bodies));
		const barePort = await freePort();
		bare = fork(path.join(__dirname, "bare-gateway.js"), [], { env: { ...process.env, BENCH_BODIES: bodiesFile, BENCH_PORT: String(barePort) } });
		await new Promise(resolve => bare!.once("message", resolve));
		const lines: string[] = [];
		for (const route of routes) {
			const baseline = await load(`http://127.0.0.1:${barePort}${route}`, {});
			const ours = await load(`${server.url}${route}`, auth);
			const label = route.replace(/pipelines\/[^/]+$/, "pipelines/{id}");
			lines.push(
				`GET ${label} (${fmt(ours.bytes / 1024, 1)} KiB): ours ${fmt(ours.perSec)} req/s (p99 ${fmt(ours.p99)} ms), bare moleculer-web ${fmt(baseline.perSec)} req/s (p99 ${fmt(baseline.p99)} ms): ${fmt(ours.perSec / baseline.perSec, 2)}× (target ≥ 0.7×)`
			);
		}
		return { name: `REST reads, autocannon ${CONNECTIONS} connections, ${SECONDS} s each`, lines };
	} finally {
		bare?.kill();
		await server.stop();
		fs.rmSync(bodiesFile, { force: true });
	}
}

if (require.main === module) runAsScript(runReadsBench);
