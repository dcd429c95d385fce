/**
 * The reference agent on S3, against a real S3-compatible server (s3rver) and a real cluster: a server over the
 * real NATS, and the reference agent as a spawned agent node configured like an operator would (AWS_ENDPOINT_URL_S3,
 * S3_FORCE_PATH_STYLE, AWS_* credentials). The spec's example task and its six-stage pipeline run from s3:// to
 * s3://; missing objects and buckets, a refused credential and an object over the limit fail at once, not retried;
 * a large object streams through the agent (its heap, measured in the agent's process, stays far below the
 * object's size) and its rows go back up as a multipart upload.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { TEST_SECRETS } from "../support/broker";
import { client, waitFor } from "../support/http";
import { startS3, type TestS3 } from "../support/s3";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const ROOT = path.resolve(__dirname, "../..");
const BUCKET = "mcp-data";
const MiB = 1024 * 1024;

type Json = Record<string, any>;

interface Memory {
	now: NodeJS.MemoryUsage;
	peak: NodeJS.MemoryUsage;
}

const SPEC_PIPELINE = {
	name: "data-processing-pipeline",
	description: "6-stage data processing pipeline",
	stages: [
		{ name: "data-ingestion", type: "data-ingestion", required: true, timeout: 300 },
		{ name: "data-transformation", type: "transformation", required: true, timeout: 600 },
		{ name: "data-analysis", type: "analysis", required: true, timeout: 900 },
		{ name: "data-validation", type: "validation", required: true, timeout: 300 },
		{ name: "data-processing", type: "processing", required: true, timeout: 1200, parameters: { group_by: ["region"] } },
		{ name: "output-generation", type: "output", required: true, timeout: 300 }
	],
	dependencies: [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 3 }, { from: 3, to: 4 }, { from: 4, to: 5 }]
};

/** About `bytes` of CSV in the sample's shape, made as it is uploaded. */
function* largeCsv(bytes: number): Generator<Buffer> {
	const regions = ["North", "East", "South", "West"];
	yield Buffer.from("id,region,product,quantity,unit_price,date\n");
	let written = 0;
	for (let id = 1; written < bytes; ) {
		let chunk = "";
		for (let i = 0; i < 2000; i++, id++) chunk += `${id},${regions[id % 4]},Widget ${id % 97},${id % 50},${(id % 1000) / 10 + 0.25},2024-01-${String((id % 28) + 1).padStart(2, "0")}\n`;
		written += chunk.length;
		yield Buffer.from(chunk);
	}
}

describeWith(NATS)("The reference agent on S3 (s3rver)", () => {
	let s3: TestS3;
	let server: TestServer;
	let env: Record<string, string>;
	let base: string;
	let probeFile: string;
	let viewer: ReturnType<typeof client>;
	let operator: ReturnType<typeof client>;
	const children: ChildProcess[] = [];

	function spawnAgent(name: string, capabilities: string, extra: Record<string, string> = {}): void {
		const child = spawn(process.execPath, ["-r", "./test/support/memory-probe.js", "dist/agents/agent-node.js"], {
			cwd: ROOT,
			env: { ...process.env, ...env, AGENT_NAME: name, AGENT_CAPABILITIES: capabilities, NODE_ID: `${name}-node`, ...extra },
			stdio: ["ignore", "ignore", "inherit"]
		});
		children.push(child);
	}

	async function activeAgent(name: string): Promise<void> {
		await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: Json) => a.name === name && a.status === "active"), 20_000);
	}

	async function finished(taskId: string, timeoutMs = 20_000): Promise<Json> {
		return waitFor(async () => {
			const task = (await viewer.get(`/api/v1/tasks/${taskId}`)).body;
			return task.status === "completed" || task.status === "failed" ? task : undefined;
		}, timeoutMs, 100);
	}

	async function submit(payload: Json, extra: Json = {}): Promise<Json> {
		const created = await operator.post("/api/v1/tasks", { type: "data-ingestion", payload, retry_count: 3, ...extra });
		expect(created.status).toBe(201);
		return finished(created.body.task_id, 60_000);
	}

	async function keys(prefix: string): Promise<string[]> {
		const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
		return (listed.Contents ?? []).map((object) => String(object.Key)).sort();
	}

	beforeAll(async () => {
		s3 = await startS3([BUCKET]);
		await s3.put(BUCKET, "data.csv", await readFile(path.join(ROOT, "examples/sample.csv")));
		base = await mkdtemp(path.join(os.tmpdir(), "s3-agent-"));
		probeFile = path.join(base, "memory.json");
		env = {
			AGENT_DATA_ROOT: path.join(base, "agent-data"),
			TRANSPORTER: `nats://${NATS.host}:${NATS.port}`,
			NAMESPACE: `s3-${randomBytes(4).toString("hex")}`,
			NODE_HEARTBEAT_INTERVAL_SEC: "1",
			NODE_HEARTBEAT_TIMEOUT_SEC: "3",
			LOG_LEVEL: "warn",
			...TEST_SECRETS,
			...s3.env
		};
		server = await startServer(env);
		viewer = client(server.url, server.token(["viewer"]));
		operator = client(server.url, server.token(["operator"]));
		spawnAgent("s3-agent", "data-ingestion,transformation,analysis,validation,processing,output", { MEMORY_PROBE_FILE: probeFile });
		await activeAgent("s3-agent");
	}, 40_000);

	afterAll(async () => {
		for (const child of children) child.kill("SIGKILL");
		await server?.stop();
		await s3?.stop();
		if (base) await rm(base, { recursive: true, force: true });
	});

	test("the spec's example task reads s3://bucket/data.csv", async () => {
		const done = await submit({ data_source: `s3://${BUCKET}/data.csv`, parameters: { format: "csv", delimiter: "," } });
		expect(done).toMatchObject({ status: "completed", attempt: 1, error: null });
		expect(done.result).toMatchObject({ source: `s3://${BUCKET}/data.csv`, format: "csv", count: 30 });
		expect(done.result.columns).toEqual(["id", "region", "product", "quantity", "unit_price", "date"]);
		expect(done.result.records[4]).toMatchObject({ id: "1005", product: "Cable, USB-C" });
	}, 30_000);

	test("the six-stage pipeline runs from s3:// to s3://, its spill files beside the output on S3", async () => {
		const pipeline = await operator.post("/api/v1/pipelines", SPEC_PIPELINE);
		expect(pipeline.status).toBe(201);
		const prefix = `runs/${randomBytes(4).toString("hex")}/`;
		const started = await operator.post(`/api/v1/pipelines/${pipeline.body.pipeline_id}/execute`, {
			input_data: { source: `s3://${BUCKET}/data.csv`, format: "csv", output: `s3://${BUCKET}/${prefix}report.json` },
			// Five rows inline at most: every stage before processing hands its rows on through S3.
			parameters: { delimiter: ",", max_inline_records: 5 }
		});
		expect(started.status).toBe(202);
		const run = await waitFor(async () => {
			const body = (await viewer.get(`/api/v1/pipelines/${pipeline.body.pipeline_id}/runs/${started.body.run_id}`)).body;
			return ["completed", "failed", "cancelled"].includes(body.status) ? body : undefined;
		}, 40_000, 100);
		expect(run.status).toBe("completed");
		const results = run.stages.map((stage: Json) => stage.result);
		for (const result of results.slice(0, 4)) expect(result.records_file).toMatch(new RegExp(`^s3://${BUCKET}/${prefix}report\\.`));
		expect(results[5]).toMatchObject({ output: `s3://${BUCKET}/${prefix}report.json`, format: "json", records: 4 });

		const report = JSON.parse(await s3.getText(BUCKET, `${prefix}report.json`)) as Json;
		expect(report.source).toBe(`s3://${BUCKET}/data.csv`);
		expect(report.processing.groups.map((group: Json) => group.region)).toEqual(["East", "North", "South", "West"]);
		expect(report.validation).toMatchObject({ valid: 28, invalid: 2 });
		expect(report.analysis.count).toBe(30);
		const stored = await keys(prefix);
		expect(stored).toContain(`${prefix}report.json`);
		expect(stored.filter((key) => /\.records\.[0-9a-f]{12}\.json$/.test(key))).toHaveLength(4);
		expect(s3.events).toContainEqual({ name: "ObjectCreated:Put", bucket: BUCKET, key: `${prefix}report.json` });
	}, 60_000);

	test("a missing key or bucket fails the task at once, naming the location", async () => {
		const missingKey = await submit({ data_source: `s3://${BUCKET}/nope/missing.csv` });
		expect(missingKey).toMatchObject({ status: "failed", attempt: 1 });
		expect(missingKey.error).toMatch(new RegExp(`s3://${BUCKET}/nope/missing\\.csv does not exist \\(NoSuchKey, HTTP 404\\)`));

		const missingBucket = await submit({ data_source: "s3://no-such-bucket-here/data.csv" });
		expect(missingBucket).toMatchObject({ status: "failed", attempt: 1 });
		expect(missingBucket.error).toMatch(/s3:\/\/no-such-bucket-here\/data\.csv: bucket no-such-bucket-here does not exist/);

		const missingOutputBucket = await submit({ data_source: `s3://${BUCKET}/data.csv`, parameters: { output: "s3://no-such-bucket-here/out.json" } }, { type: "output" });
		expect(missingOutputBucket).toMatchObject({ status: "failed", attempt: 1 });
		expect(missingOutputBucket.error).toMatch(/output s3:\/\/no-such-bucket-here\/out\.json: bucket no-such-bucket-here does not exist/);
	}, 60_000);

	test("an object over the task's size limit is refused before it is read", async () => {
		const done = await submit({ data_source: `s3://${BUCKET}/data.csv`, parameters: { max_object_bytes: 100 } });
		expect(done).toMatchObject({ status: "failed", attempt: 1 });
		expect(done.error).toMatch(/^OBJECT_TOO_LARGE: data source s3:\/\/mcp-data\/data\.csv is \d+ bytes, over the limit of 100 bytes/);
	}, 30_000);

	test("a large object streams through the agent and its rows go back up as a multipart upload", async () => {
		const upload = new Upload({ client: s3.client, params: { Bucket: BUCKET, Key: "big/sales.csv", Body: Readable.from(largeCsv(48 * MiB)) } });
		await upload.done();
		const objectBytes = (await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "big/sales.csv" }))).Contents?.[0]?.Size ?? 0;
		expect(objectBytes).toBeGreaterThan(48 * MiB);

		// A new measurement, from the agent's figures now (idle, the SDK already loaded by the tests before).
		const agent = children[0];
		agent.kill("SIGUSR2");
		await new Promise((resolve) => setTimeout(resolve, 200));
		const before = JSON.parse(await readFile(probeFile, "utf8")) as Memory;
		const done = await submit({ data_source: `s3://${BUCKET}/big/sales.csv`, parameters: { format: "csv" } });
		const after = JSON.parse(await readFile(probeFile, "utf8")) as Memory;
		expect(done).toMatchObject({ status: "completed", attempt: 1 });
		expect(done.result.count).toBeGreaterThan(700_000);
		const spill = String(done.result.records_file);
		expect(spill).toMatch(/^s3:\/\/mcp-data\/big\/sales\.data-ingestion\.records\.[0-9a-f]{12}\.json$/);

		const heapGrowth = after.peak.heapUsed - before.now.heapUsed;
		const rssGrowth = after.peak.rss - before.now.rss;
		console.info(`agent memory while ingesting ${(objectBytes / MiB).toFixed(1)} MiB: heap +${(heapGrowth / MiB).toFixed(1)} MiB, rss +${(rssGrowth / MiB).toFixed(1)} MiB`);
		// Buffering the object would add at least its size to the heap (the rows, as objects, several times that);
		// streamed, the agent holds a thousand rows, a few chunks and garbage not yet collected (10-15 MiB here).
		expect(heapGrowth).toBeLessThan(objectBytes * 0.75);
		const key = spill.slice(`s3://${BUCKET}/`.length);
		expect(s3.events).toContainEqual({ name: "ObjectCreated:Post", bucket: BUCKET, key });
		expect(s3.events).not.toContainEqual({ name: "ObjectCreated:Put", bucket: BUCKET, key });
		expect(done.logs.map((log: Json) => log.message).join("\n")).toMatch(/records spilled to .* in \d+ parts/);
	}, 90_000);

	test("a credential the store refuses fails the task at once, and the message holds no credential", async () => {
		spawnAgent("s3-bad-credential", "data-ingestion,wrong-credential", { AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG1", AWS_SECRET_ACCESS_KEY: "wrong-secret-do-not-leak" });
		await activeAgent("s3-bad-credential");
		const done = await submit({ data_source: `s3://${BUCKET}/data.csv` }, { required_capabilities: ["wrong-credential"] });
		expect(done).toMatchObject({ status: "failed", attempt: 1 });
		expect(done.error).toMatch(/s3:\/\/mcp-data\/data\.csv: S3 refused the agent's credential \(InvalidAccessKeyId, HTTP 403\)/);
		expect(JSON.stringify(done)).not.toMatch(/AKIAWRONG|wrong-secret/);
	}, 40_000);

	test("a store that does not answer is left to the task's retries", async () => {
		const closed = await new Promise<number>((resolve) => {
			const probe = createServer().listen(0, "127.0.0.1", () => {
				const { port } = probe.address() as AddressInfo;
				probe.close(() => resolve(port));
			});
		});
		spawnAgent("s3-unreachable", "data-ingestion,unreachable-store", { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}` });
		await activeAgent("s3-unreachable");
		const done = await submit({ data_source: `s3://${BUCKET}/data.csv` }, { required_capabilities: ["unreachable-store"], retry_count: 1 });
		expect(done).toMatchObject({ status: "failed", attempt: 2 });
		expect(done.error).toMatch(/cannot reach S3 for data source s3:\/\/mcp-data\/data\.csv .*ECONNREFUSED.*may pass on a retry/);
	}, 40_000);
});
