/**
 * Hostile input over real HTTP (contract, "Hardening" and "Errors"): bodies nested past 32 levels
 * and `__proto__`/`constructor`/`prototype` keys anywhere are 422 naming the path, nothing of them
 * is stored, nothing deeper is ever a 5xx; the worst record the API accepts (32 levels, keys a
 * document store dislikes, the body limit, extreme numbers) is stored and read back exactly, and no
 * list trips over it; every list caps `limit`.
 */
import { TEST_SECRETS } from "../support/broker";
import { client, request, type HttpResult } from "../support/http";
import { startServer, type TestServer } from "../support/server";

const MAX_DEPTH = 32;
const FORBIDDEN = ["__proto__", "constructor", "prototype"] as const;

/** An object `levels` deep of its own (`{ leaf }` is one level), each level under the next of `keys`. */
function nested(levels: number, keys: string[] = ["a"]): Record<string, unknown> {
	let value: Record<string, unknown> = { leaf: true };
	for (let i = levels - 1; i > 0; i--) value = { [keys[i % keys.length]]: value };
	return value;
}

/** Arrays `levels` deep of their own (`[1]` is one level). */
function nestedArray(levels: number): unknown[] {
	let value: unknown[] = [1];
	for (let i = 1; i < levels; i++) value = [value];
	return value;
}

/** Raw JSON text `levels` deep, built as text: no JSON.stringify (nor parser of ours) need survive it. */
const deepText = (levels: number, open: string, close: string, leaf = "1") => open.repeat(levels) + leaf + close.repeat(levels);

/**
 * Where two JSON values first differ (a path), or null: jest's own diff of two 1 MiB records
 * nested 32 deep would take longer than the test.
 */
function firstDifference(actual: unknown, expected: unknown): string | null {
	const stack: Array<[unknown, unknown, string]> = [[actual, expected, "$"]];
	while (stack.length) {
		const [a, b, path] = stack.pop()!;
		if (a === b) continue;
		if (a === null || b === null || typeof a !== "object" || typeof b !== "object" || Array.isArray(a) !== Array.isArray(b)) return `${path}: ${String(a).slice(0, 40)} ≠ ${String(b).slice(0, 40)}`;
		const keysA = Object.keys(a);
		const keysB = Object.keys(b);
		if (keysA.length !== keysB.length) return `${path}: keys [${keysA.join(",").slice(0, 200)}] ≠ [${keysB.join(",").slice(0, 200)}]`;
		for (const key of keysB) {
			if (!Object.hasOwn(a, key)) return `${path}: no key ${JSON.stringify(key.slice(0, 40))}`;
			stack.push([(a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}[${JSON.stringify(key.slice(0, 40))}]`]);
		}
	}
	return null;
}

/** What the server should hand back: the record as JSON carries it. */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

const expect422At = (res: HttpResult, field: string, type?: string) => {
	expect(res.status).toBe(422);
	expect(res.body.error.code).toBe("VALIDATION_ERROR");
	expect(res.body.error.details[0].field).toBe(field);
	if (type) expect(res.body.error.details[0].type).toBe(type);
};

describe("hostile input", () => {
	let server: TestServer;
	let operator: ReturnType<typeof client>;
	let admin: ReturnType<typeof client>;
	let pipelineId: string;
	const raw = (method: string, path: string, rawBody: string, headers: Record<string, string> = {}) =>
		request(server.url, method, path, { token: server.token(["operator"], "olive"), rawBody, headers });
	const totals = async () => ({
		tasks: (await operator.get("/api/v1/tasks?limit=1")).body.total as number,
		pipelines: (await operator.get("/api/v1/pipelines?limit=1")).body.total as number,
		runs: (await operator.get(`/api/v1/pipelines/${pipelineId}`)).body.runs.length as number,
		agents: (await operator.get("/api/v1/agents?limit=1")).body.total as number
	});

	beforeAll(async () => {
		server = await startServer({ HEALTH_CHECK_INTERVAL_MS: "60000" });
		operator = client(server.url, server.token(["operator"], "olive"));
		admin = client(server.url, server.token(["admin"], "root"));
		const created = await operator.post("/api/v1/pipelines", { name: "input-checks", stages: [{ name: "load", type: "data-ingestion" }, { name: "store", type: "output" }] });
		expect(created.status).toBe(201);
		pipelineId = created.body.pipeline_id;
	});
	afterAll(() => server?.stop());

	describe("depth", () => {
		test("32 levels are accepted; 33 are 422 naming the dotted path of the first level too deep, and nothing is stored", async () => {
			const ok = await operator.post("/api/v1/tasks", { type: "depth-check", payload: nested(MAX_DEPTH - 1) });
			expect(ok.status).toBe(201);
			const before = await totals();
			const tooDeep = await operator.post("/api/v1/tasks", { type: "depth-check", payload: nested(MAX_DEPTH) });
			expect422At(tooDeep, `payload${".a".repeat(MAX_DEPTH - 1)}`, "depth");
			expect(await totals()).toEqual(before);
		});

		test("arrays count as levels and are named with brackets", async () => {
			expect((await operator.post("/api/v1/tasks", { type: "depth-check", payload: { list: nestedArray(MAX_DEPTH - 2) } })).status).toBe(201);
			const before = await totals();
			const tooDeep = await operator.post("/api/v1/tasks", { type: "depth-check", payload: { list: nestedArray(MAX_DEPTH - 1) } });
			expect422At(tooDeep, `payload.list${"[0]".repeat(MAX_DEPTH - 2)}`, "depth");
			expect(await totals()).toEqual(before);
		});

		test("thousands of levels, on every route that takes a body: 422, never a 5xx; the server answers afterwards", async () => {
			const bodies = [
				deepText(5000, '{"a":', "}"),
				deepText(5000, "[", "]"),
				deepText(3000, '{"a":[', "]}"),
				deepText(100_000, "[", "]")
			];
			const routes = ["/api/v1/tasks", "/api/v1/pipelines", `/api/v1/pipelines/${pipelineId}/execute`, "/api/v1/agents/register", "/api/v1/auth/token"];
			const before = await totals();
			for (const path of routes)
				for (const body of bodies) {
					const res = await raw("POST", path, body);
					expect({ path, status: res.status }).toEqual({ path, status: 422 });
					expect(res.body.error.code).toBe("VALIDATION_ERROR");
				}
			// Inside a field too: the envelope is fine, the payload is not.
			expect((await raw("POST", "/api/v1/tasks", `{"type":"x","payload":${deepText(4000, '{"b":', "}")}}`)).status).toBe(422);
			expect((await operator.get("/api/v1/tasks")).status).toBe(200);
			expect((await request(server.url, "GET", "/health")).status).toBe(200);
			expect(await totals()).toEqual(before);
		});
	});

	describe("forbidden keys", () => {
		/** [route, raw body, the path the 422 must name] for each key, at the top and deep inside. */
		const cases = (key: string): Array<[string, string, string, Record<string, string>?]> => [
			["/api/v1/tasks", `{"${key}":{"type":"x"},"type":"forbidden-key"}`, key],
			["/api/v1/tasks", `{"type":"forbidden-key","payload":{"a":[{"b":{"${key}":{"polluted":true}}}]}}`, `payload.a[0].b.${key}`],
			["/api/v1/pipelines", `{"${key}":{"name":"x"},"name":"p","stages":[{"name":"s","type":"transformation"}]}`, key],
			["/api/v1/pipelines", `{"name":"p","stages":[{"name":"s","type":"transformation","parameters":{"opts":{"${key}":1}}}]}`, `stages[0].parameters.opts.${key}`],
			["EXECUTE", `{"${key}":{"input_data":{}},"input_data":{}}`, key],
			["EXECUTE", `{"input_data":{"records":[{"id":1},{"${key}":{"isAdmin":true}}]}}`, `input_data.records[1].${key}`],
			["/api/v1/agents/register", `{"${key}":{"name":"x"},"name":"fk-agent","type":"worker","capabilities":["c"]}`, key, { "X-API-Key": TEST_SECRETS.API_KEY }],
			["/api/v1/agents/register", `{"name":"fk-agent","type":"worker","capabilities":["c"],"resources":{"cpu":1,"${key}":{"gpu":true}}}`, `resources.${key}`]
		];

		test.each(FORBIDDEN)("'%s' at the top and deep inside tasks, pipeline definitions, run input and registrations: 422 naming the path; nothing stored", async key => {
			const before = await totals();
			for (const [route, body, field, headers] of cases(key)) {
				const path = route === "EXECUTE" ? `/api/v1/pipelines/${pipelineId}/execute` : route;
				const res = await (headers ? request(server.url, "POST", path, { rawBody: body, headers }) : raw("POST", path, body));
				expect({ route, field: res.body?.error?.details?.[0]?.field, status: res.status }).toEqual({ route, field, status: 422 });
				expect(res.body.error.details[0].type).toBe("forbiddenKey");
			}
			expect(await totals()).toEqual(before);
			expect(({} as Record<string, unknown>).polluted).toBeUndefined();
			// Nobody learns anything from the check before they are known.
			expect((await request(server.url, "POST", "/api/v1/tasks", { rawBody: cases(key)[0][1] })).status).toBe(401);
		});
	});

	describe("the worst record the API accepts", () => {
		const LIMIT = 1024 * 1024;
		const ODD_KEYS = ["a.b", "a%2Eb", "$where", "%24where", "$", "%", "%25", "%2e", "ключ", "🔑", "", " constructor", "__proto__x", "hasOwnProperty", "toString", "valueOf"];

		/** Every odd key, numbers at the edges of a double, nulls, arrays of arrays, and a chain down to `depth` levels of its own. */
		function worst(depth: number): Record<string, unknown> {
			const record: Record<string, unknown> = {};
			ODD_KEYS.forEach((key, i) => (record[key] = [i, key, { [key]: { [key]: null } }]));
			Object.assign(record, {
				["k".repeat(10_000)]: "a very long key",
				numbers: [1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.1 + 0.2, 0],
				nulls: [null, [null], { n: null }],
				arrays: [[[]], [[1, [2, [3]]]], [], [[{ "$x": [[]] }]]],
				empty: {},
				chain: nested(depth - 1, ODD_KEYS),
				arrayChain: nestedArray(depth - 1),
				text: ""
			});
			return record;
		}

		/** Pads `record.text` so that `envelope(record)` as JSON is exactly `bytes` long. */
		function fill(record: Record<string, unknown>, envelope: (r: Record<string, unknown>) => unknown, bytes: number) {
			const size = () => Buffer.byteLength(JSON.stringify(envelope(record)));
			record.text = "é".repeat(Math.floor((bytes - size()) / 2));
			record.text += "x".repeat(bytes - size());
			expect(size()).toBe(bytes);
			return record;
		}

		test("through POST /tasks: exactly the body limit, 32 levels; stored and read back exactly; one byte more is 413", async () => {
			const payload = fill(worst(MAX_DEPTH - 1), p => ({ type: "worst-record", payload: p }), LIMIT);
			const created = await operator.post("/api/v1/tasks", { type: "worst-record", payload });
			expect(created.status).toBe(201);
			const got = await operator.get(`/api/v1/tasks/${created.body.task_id}`);
			expect(got.status).toBe(200);
			expect(firstDifference(got.body.payload, asJson(payload))).toBeNull();

			const over = await raw("POST", "/api/v1/tasks", JSON.stringify({ type: "worst-record", payload: { ...payload, text: `${payload.text}x` } }));
			expect(over.status).toBe(413);
			expect(over.body.error.code).toBe("PAYLOAD_TOO_LARGE");
		});

		test("through a run's input_data: the run and its stage task carry it exactly", async () => {
			// A stage task's payload holds input_data one level further down than the execute body does.
			const input = fill(worst(MAX_DEPTH - 2), i => ({ input_data: i }), LIMIT - 4096);
			const run = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: input });
			expect(run.status).toBe(202);
			const view = await operator.get(`/api/v1/pipelines/${pipelineId}/runs/${run.body.run_id}`);
			expect(view.status).toBe(200);
			expect(view.body.status).toBe("running");
			expect(firstDifference(view.body.input_data, asJson(input))).toBeNull();
			const stageTask = await operator.get(`/api/v1/tasks/${view.body.stages[0].task_id}`);
			expect(stageTask.status).toBe(200);
			expect(firstDifference(stageTask.body.payload.input_data, asJson(input))).toBeNull();
		});

		test("input_data that would not fit a stage task's payload is 422 at execute, not a run that fails", async () => {
			const before = await totals();
			const res = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { input_data: nested(MAX_DEPTH - 1) });
			expect422At(res, `input_data${".a".repeat(MAX_DEPTH - 2)}`, "depth");
			const params = await operator.post(`/api/v1/pipelines/${pipelineId}/execute`, { parameters: { p: nestedArray(MAX_DEPTH - 2) } });
			expect422At(params, `parameters.p${"[0]".repeat(MAX_DEPTH - 3)}`, "depth");
			expect(await totals()).toEqual(before);
		});

		test("an agent's resources with odd keys are stored and read back exactly", async () => {
			const resources = { cpu: 1, "a.b": { "$x": [[1, { "%": "" }]] }, "%2E": ".", "": null };
			const reg = await operator.post("/api/v1/agents/register", { name: "odd-resources", type: "worker", capabilities: ["none"], resources });
			expect(reg.status).toBe(201);
			expect((await operator.get(`/api/v1/agents/${reg.body.id}`)).body.resources).toEqual(resources);
		});

		test("afterwards every list answers 200", async () => {
			for (const path of ["/api/v1/tasks", "/api/v1/tasks?status=pending", "/api/v1/tasks?limit=1000", "/api/v1/pipelines", `/api/v1/pipelines/${pipelineId}`, "/api/v1/agents"]) {
				const res = await operator.get(path);
				expect({ path, status: res.status }).toEqual({ path, status: 200 });
			}
			expect((await admin.get("/api/v1/audit")).status).toBe(200);
			expect((await admin.get("/api/v1/audit?limit=1000")).status).toBe(200);
			const listed = (await operator.get("/api/v1/tasks?status=pending&limit=1000")).body.tasks as Array<{ type: string; payload: { text?: string } }>;
			expect(listed.find(t => t.type === "worst-record")?.payload.text?.length).toBeGreaterThan(500_000);
		});
	});

	test("every list caps limit: 100000 is 422 naming limit", async () => {
		for (const [who, path] of [[operator, "/api/v1/tasks"], [operator, "/api/v1/pipelines"], [operator, "/api/v1/agents"], [admin, "/api/v1/audit"]] as const) {
			expect422At(await who.get(`${path}?limit=100000`), "limit");
			expect((await who.get(`${path}?limit=1000`)).status).toBe(200);
		}
	});
});
