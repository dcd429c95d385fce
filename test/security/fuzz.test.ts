/**
 * A seeded fuzz pass over every REST route (src/gateway/routes.ts), over real HTTP, with a valid
 * operator token (admin for /audit): wrong JSON types for each field, huge strings and numbers,
 * deep nesting, odd keys, arrays and scalars instead of objects, malformed JSON text, wrong or
 * missing content types and encodings, odd query strings and path ids (real ones where useful).
 * Every answer is a 4xx with the contract's error body, or a 2xx for a body that happens to be
 * valid; never a 5xx, never a hang; and the server still does real work afterwards.
 *
 * Requests are drawn with fast-check from a fixed seed (in the test names): a failure names the
 * request, and the same seed draws it again.
 */
import { randomUUID } from "node:crypto";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { TEST_SECRETS } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { complete, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { loadServiceSchema, startServer, type TestServer } from "../support/server";
import { REST_ROUTES, type RestRoute } from "../../src/gateway/routes";

/** Fixed, so every run sends the same requests; FUZZ_SEED draws others (the seed is in the test names either way). */
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_611);
const RUNS_PER_ROUTE = 200;
const CONCURRENCY = 6;
const REQUEST_TIMEOUT_MS = 15_000;

/** The body fields an action takes, from its parameter schema (pipelines.create checks its body by hand). */
function fieldsOf(action: string): string[] {
	const [service, name] = action.split(".");
	if (action === "pipelines.create") return ["name", "description", "stages", "dependencies"];
	const params = (loadServiceSchema(service).actions?.[name] as { params?: Record<string, unknown> } | undefined)?.params ?? {};
	return Object.keys(params).filter(key => !key.startsWith("$$"));
}

const ODD_KEYS = ["__proto__", "constructor", "prototype", "", "$where", "$gt", "a.b", "%", "%2E", "🔑", "\u0000", "k".repeat(5000), "toString", "hasOwnProperty", "0", "length"];
const oddKey = fc.constantFrom(...ODD_KEYS);
const scalar = fc.oneof(
	fc.string({ maxLength: 40 }),
	fc.string({ unit: "binary", maxLength: 20 }),
	fc.integer(),
	fc.double(),
	fc.boolean(),
	fc.constant(null),
	fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 0, 1e308, -1e308, 5e-324)
);
/** JSON text of a value of any type, including number tokens JSON.stringify never writes and deep nesting. */
const deepText = fc
	.tuple(fc.integer({ min: 20, max: 2500 }), fc.constantFrom(['{"a":', "}"], ["[", "]"], ['{"a":[', "]}"], ['[{"__proto__":', "}]"]))
	.map(([depth, [open, close]]) => open.repeat(depth) + "1" + close.repeat(depth));
const valueText: fc.Arbitrary<string> = fc.oneof(
	{ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(v => JSON.stringify(v) ?? "null") },
	{ weight: 3, arbitrary: scalar.map(v => JSON.stringify(v) ?? "null") },
	{ weight: 1, arbitrary: fc.integer({ min: 10_000, max: 300_000 }).map(n => JSON.stringify("x".repeat(n))) },
	{ weight: 1, arbitrary: fc.constantFrom("1e400", "-1e400", "1e-400", "123456789012345678901234567890", "-0", "1E+2", "0.1e1") },
	{ weight: 1, arbitrary: fc.array(fc.tuple(oddKey, fc.jsonValue({ maxDepth: 2 })), { maxLength: 4 }).map(entries => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}`).join(",")}}`) },
	{ weight: 1, arbitrary: fc.array(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), { maxLength: 3 }).map(v => JSON.stringify(v)) },
	{ weight: 1, arbitrary: deepText }
);

/** An object with some of the action's fields, each of any type, and a few odd keys. */
function objectText(fields: string[]): fc.Arbitrary<string> {
	const known = fc.subarray(fields).chain(chosen => fc.tuple(...chosen.map(field => valueText.map(v => [field, v] as const))));
	const extra = fc.array(fc.tuple(fc.oneof(oddKey, fc.string({ maxLength: 10 })), valueText), { maxLength: 3 });
	return fc.tuple(known, extra).map(([k, e]) => `{${[...k, ...e].map(([key, v]) => `${JSON.stringify(key)}:${v}`).join(",")}}`);
}

function bodyText(fields: string[]): fc.Arbitrary<string | undefined> {
	return fc.oneof(
		{ weight: 8, arbitrary: objectText(fields) },
		{ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(v => JSON.stringify(v) ?? "null") },
		{ weight: 1, arbitrary: fc.array(objectText(fields), { maxLength: 3 }).map(items => `[${items.join(",")}]`) },
		{ weight: 1, arbitrary: objectText(fields).map(text => text.slice(0, Math.max(1, Math.floor(text.length / 2)))) },
		{ weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("{", "[", '{"a":', "{'a':1}", '{"a":1,}', '{"a" 1}', "\u0000", "nul", "tru", '"open', "{}}", "[]]", "\ufeff{}", "")) },
		{ weight: 1, arbitrary: deepText },
		{ weight: 1, arbitrary: fc.integer({ min: 900_000, max: 1_200_000 }).map(n => `{"name":"${"x".repeat(n)}"}`) },
		{ weight: 1, arbitrary: fc.constant(undefined) }
	);
}

const contentType = fc.oneof(
	{ weight: 12, arbitrary: fc.constant("application/json") },
	{
		weight: 4,
		arbitrary: fc.constantFrom(
			"application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz",
			"application/json; charset=utf-16", "application/json; charset=latin1", "application/json; charset=bogus", "application/xml",
			"application/vnd.api+json", "*/*", "", "none"
		)
	}
);
const QUERY_FIELDS = ["limit", "offset", "status", "type", "capability", "pipeline_id", "run_id", "agent_id", "actor", "action", "result", "since", "id"];
const queryText = fc
	.array(
		fc.tuple(
			fc.oneof(fc.constantFrom(...QUERY_FIELDS, "__proto__[x]", "constructor[prototype][x]", "limit[]", "status[$ne]", "a[b][c][d][e][f][g][h]"), fc.string({ maxLength: 8 }).map(encodeURIComponent)),
			fc.oneof(
				fc.constantFrom("", "-1", "0", "1", "1000", "1001", "100000", "1e400", "NaN", "Infinity", "abc", "%zz", "true", "null", "[]", "2024-13-45", "x".repeat(3000)),
				fc.string({ maxLength: 12 }).map(encodeURIComponent),
				fc.integer().map(String)
			)
		),
		{ maxLength: 4 }
	)
	.map(pairs => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}` : ""));
const pathId = (real: string) =>
	fc.oneof(
		{ weight: 3, arbitrary: fc.constant(real) },
		{ weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent) },
		{
			weight: 1,
			arbitrary: fc.constantFrom("%zz", "%", "%00", "%2e%2e", "%2F", "a%2Fb", "x".repeat(5000), "%F0%9F%94%91", "%C0%AF", "%uD800", "__proto__", "constructor", "$where", "null", "0", "-1", "1e400")
		}
	);
const idempotencyKey = fc.string({ minLength: 1, maxLength: 300 }).map(s => s.replace(/[^\x20-\x7e]/g, "_"));

interface FuzzRequest {
	method: string;
	path: string;
	headers: Record<string, string>;
	body?: string;
}

interface Ids {
	agent: string;
	task: string;
	pipeline: string;
	run: string;
}

function requestsFor(route: RestRoute, ids: Ids, token: string): fc.Arbitrary<FuzzRequest> {
	const realId = route.path.startsWith("/agents") ? ids.agent : route.path.startsWith("/tasks") ? ids.task : ids.pipeline;
	const path = fc
		.tuple(pathId(realId), pathId(ids.run))
		.map(([id, runId]) => `/api/v1${route.path.replace(":id", id).replace(":run_id", runId)}`);
	const auth = fc.oneof(
		{ weight: 19, arbitrary: fc.constant<string | undefined>(`Bearer ${token}`) },
		{ weight: 1, arbitrary: fc.constantFrom<string | undefined>(undefined, "Bearer garbage", `Basic ${Buffer.from("a:b").toString("base64")}`, `Bearer ${token}x`, "Bearer") }
	);
	const withBody = route.method !== "GET";
	return fc
		.record({
			path,
			query: queryText,
			auth,
			body: withBody ? bodyText(fieldsOf(route.action)) : fc.constant(undefined),
			contentType,
			key: fc.option(idempotencyKey, { freq: 4 }),
			encoding: fc.option(fc.constantFrom("gzip", "deflate", "br", "identity", "bogus"), { freq: 15 })
		})
		.map(({ path: p, query, auth: a, body, contentType: type, key, encoding }) => {
			const headers: Record<string, string> = {};
			if (a) headers.Authorization = a;
			if (body !== undefined && type !== "none") headers["Content-Type"] = type;
			if (key) headers["Idempotency-Key"] = key;
			if (encoding && body !== undefined) headers["Content-Encoding"] = encoding;
			return { method: route.method, path: p + query, headers, body };
		});
}

type Outcome = { status: number; text: string } | { error: string };

async function send(base: string, req: FuzzRequest): Promise<Outcome> {
	try {
		// A Buffer body: fetch adds no content type of its own, so "none" really sends none.
		const res = await fetch(base + req.path, {
			method: req.method,
			headers: req.headers,
			body: req.body === undefined ? undefined : Buffer.from(req.body),
			signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
		});
		return { status: res.status, text: await res.text() };
	} catch (err) {
		return { error: (err as Error).message };
	}
}

/** Why an answer breaks the contract, or null. */
function problemOf(outcome: Outcome): string | null {
	if ("error" in outcome) return `no answer: ${outcome.error}`;
	const { status, text } = outcome;
	if (status >= 500) return `status ${status}: ${text.slice(0, 300)}`;
	if (status < 200 || (status >= 300 && status < 400)) return `status ${status}`;
	if (status < 400) return null;
	let body: { error?: { code?: unknown; message?: unknown } } | undefined;
	try {
		body = JSON.parse(text);
	} catch {
		return `status ${status} without a JSON body: ${text.slice(0, 200)}`;
	}
	return typeof body?.error?.code === "string" && typeof body.error.message === "string" ? null : `status ${status}, not the contract's error body: ${text.slice(0, 200)}`;
}

const describeRequest = (req: FuzzRequest) =>
	`${req.method} ${req.path.slice(0, 300)} ${JSON.stringify(req.headers).slice(0, 300)} body(${req.body?.length ?? 0}): ${req.body?.slice(0, 300) ?? "none"}`;

async function inPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
	let next = 0;
	await Promise.all(Array.from({ length: concurrency }, async () => {
		while (next < items.length) await work(items[next++]);
	}));
}

describe(`fuzz pass over every REST route (seed ${SEED}, ${RUNS_PER_ROUTE} requests each)`, () => {
	let server: TestServer;
	let ids: Ids;
	const agents: HttpAgent[] = [];

	beforeAll(async () => {
		server = await startServer({ RATE_LIMIT_PER_MINUTE: "1000000", HEALTH_CHECK_INTERVAL_MS: "60000", MAX_AGENTS: "1000" });
		const operator = client(server.url, server.token(["operator"], "fuzzer"));
		const agent = await request(server.url, "POST", "/api/v1/agents/register", {
			body: { name: "fuzz-real", type: "worker", capabilities: ["fuzz-real"] },
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		const task = await operator.post("/api/v1/tasks", { type: "fuzz-real" });
		const pipeline = await operator.post("/api/v1/pipelines", { name: "fuzz", stages: [{ name: "s", type: "analysis", required_capabilities: ["nobody"] }] });
		const run = await operator.post(`/api/v1/pipelines/${pipeline.body.pipeline_id}/execute`, {});
		ids = { agent: agent.body.id, task: task.body.task_id, pipeline: pipeline.body.pipeline_id, run: run.body.run_id };
		expect(Object.values(ids).every(Boolean)).toBe(true);
	});
	afterAll(async () => {
		await server?.stop();
		await Promise.all(agents.map(a => a.close()));
	});

	test.each(REST_ROUTES.map((route, index) => ({ route, index, name: `${route.method} ${route.path}` })))(`seed ${SEED}: $name answers 4xx or 2xx, never 5xx`, async ({ route, index }) => {
		const token = route.action === "audit.list" ? server.token(["admin"], "fuzz-admin") : server.token(["operator"], "fuzzer");
		const requests = fc.sample(requestsFor(route, ids, token), { seed: SEED + index, numRuns: RUNS_PER_ROUTE });
		const problems: string[] = [];
		const statuses = new Map<number, number>();
		await inPool(requests, CONCURRENCY, async req => {
			const outcome = await send(server.url, req);
			if ("status" in outcome) statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
			const problem = problemOf(outcome);
			if (problem) problems.push(`${problem}\n    for ${describeRequest(req)}`);
		});
		expect(problems.slice(0, 5)).toEqual([]);
		// The pass reached the action's own checks, not only the gateway's.
		expect([...statuses.keys()].some(s => s === 422 || s === 404 || s === 409 || s < 300)).toBe(true);
	});

	test("a body in the Content-Encoding it names is read; one that is not is 400 (it was a 500), and an unknown encoding 415", async () => {
		const token = server.token(["operator"], "fuzzer");
		const post = (body: Buffer, encoding: string) =>
			fetch(`${server.url}/api/v1/tasks`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Content-Encoding": encoding }, body });
		const json = Buffer.from(JSON.stringify({ type: "encoded" }));
		for (const [encoding, encode] of [["gzip", gzipSync], ["deflate", deflateSync], ["br", brotliCompressSync]] as const) {
			expect({ encoding, status: (await post(encode(json), encoding)).status }).toEqual({ encoding, status: 201 });
			const wrong = await post(json, encoding);
			expect({ encoding, status: wrong.status }).toEqual({ encoding, status: 400 });
			expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("BAD_REQUEST");
		}
		const unknown = await post(json, "bogus");
		expect(unknown.status).toBe(415);
		expect(((await unknown.json()) as { error: unknown }).error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
	});

	test("afterwards the server answers /health and runs a real task end to end", async () => {
		expect((await request(server.url, "GET", "/health")).status).toBe(200);
		const agent = await startHttpAgent();
		agents.push(agent);
		agent.script = complete({ after: "fuzz" });
		const capability = `after-fuzz-${randomUUID()}`;
		const operator = client(server.url, server.token(["operator"], "after-fuzz"));
		expect((await operator.post("/api/v1/agents/register", { name: capability, type: "worker", capabilities: [capability], endpoints: { task: agent.endpoints.task } })).status).toBe(201);
		const task = await operator.post("/api/v1/tasks", { type: capability, payload: { n: 1 } });
		expect(task.status).toBe(201);
		const done = await waitFor(async () => {
			const got = (await operator.get(`/api/v1/tasks/${task.body.task_id}`)).body;
			return got.status === "completed" && got;
		});
		expect(done.result).toEqual({ after: "fuzz" });
		expect((await operator.get("/api/v1/tasks?limit=1000")).status).toBe(200);
	});
});
