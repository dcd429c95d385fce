/**
 * The gateway's contract over real HTTP: authentication, roles, errors, limits, audit, health.
 */
import jwt from "jsonwebtoken";
import { TEST_SECRETS } from "../support/broker";
import { client, request, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";

const agentBody = { name: "gw-agent", type: "worker", capabilities: ["task-execution"] };

describe("gateway", () => {
	let server: TestServer;
	let admin: string;
	let operator: string;
	let viewer: string;

	beforeAll(async () => {
		server = await startServer({ CORS_ORIGINS: "https://dash.example.com" });
		admin = server.token(["admin"], "ada");
		operator = server.token(["operator"], "olive");
		viewer = server.token(["viewer"], "vic");
	});
	afterAll(() => server.stop());

	describe("authentication", () => {
		const get = (token?: string, headers: Record<string, string> = {}) => request(server.url, "GET", "/api/v1/agents", { token, headers });

		test("no token: 401 with the contract's body", async () => {
			const res = await get();
			expect(res.status).toBe(401);
			expect(res.body).toEqual({ error: { code: "UNAUTHORIZED", message: expect.any(String) } });
		});

		test("a Flask-style HS256 token with sub, roles, exp is accepted", async () => {
			const flask = jwt.sign({ sub: "42", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) + 60 }, TEST_SECRETS.JWT_SECRET);
			expect((await get(flask)).status).toBe(200);
		});

		test("expired, badly signed, alg none and other algorithms: 401", async () => {
			const expired = jwt.sign({ sub: "a", roles: ["admin"], exp: Math.floor(Date.now() / 1000) - 10 }, TEST_SECRETS.JWT_SECRET);
			const wrongKey = jwt.sign({ sub: "a", roles: ["admin"] }, "another-secret");
			const none = jwt.sign({ sub: "a", roles: ["admin"] }, "", { algorithm: "none" });
			const hs512 = jwt.sign({ sub: "a", roles: ["admin"] }, TEST_SECRETS.JWT_SECRET, { algorithm: "HS512" });
			for (const token of [expired, wrongKey, none, hs512, "not.a.jwt"]) {
				const res = await get(token);
				expect(res.status).toBe(401);
				expect(res.body.error.code).toBe("UNAUTHORIZED");
			}
			expect((await get(expired)).body.error.message).toMatch(/expired/i);
		});

		test("X-API-Key is accepted only for registration; a wrong key is 401", async () => {
			expect((await get(undefined, { "X-API-Key": TEST_SECRETS.API_KEY })).status).toBe(401);
			const wrong = await request(server.url, "POST", "/api/v1/agents/register", { body: agentBody, headers: { "X-API-Key": "nope" } });
			expect(wrong.status).toBe(401);
			const right = await request(server.url, "POST", "/api/v1/agents/register", { body: agentBody, headers: { "X-API-Key": TEST_SECRETS.API_KEY } });
			expect(right.status).toBe(201);
			expect(right.headers.get("location")).toBe(`/api/v1/agents/${right.body.id}`);
		});
	});

	describe("token exchange", () => {
		test("API key → JWT that works on the API", async () => {
			const res = await request(server.url, "POST", "/api/v1/auth/token", {
				body: { api_key: TEST_SECRETS.API_KEY, sub: "ci-bot", roles: ["operator"], expires_in: 120 }
			});
			expect(res.status).toBe(200);
			expect(res.body).toEqual({ token: expect.any(String), expires_in: 120 });
			const claims = jwt.decode(res.body.token) as jwt.JwtPayload;
			expect(claims).toMatchObject({ sub: "ci-bot", roles: ["operator"] });
			expect(claims.exp! - claims.iat!).toBe(120);
			expect((await request(server.url, "GET", "/api/v1/agents", { token: res.body.token })).status).toBe(200);
		});

		test("a wrong key is 401; admin tokens only from an admin; bad fields 422", async () => {
			const wrong = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: "x", sub: "s" } });
			expect(wrong.status).toBe(401);
			const escalate = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, sub: "s", roles: ["admin"] } });
			expect(escalate.status).toBe(403);
			const byAdmin = await request(server.url, "POST", "/api/v1/auth/token", { token: admin, body: { sub: "root2", roles: ["admin"] } });
			expect(byAdmin.status).toBe(200);
			const bad = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, roles: ["god"], expires_in: -1 } });
			expect(bad.status).toBe(422);
			expect(bad.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(["expires_in", "roles[0]", "sub"]);
		});
	});

	describe("roles", () => {
		test("viewer reads but may not register, delete or read the audit log", async () => {
			const v = client(server.url, viewer);
			expect((await v.get("/api/v1/agents")).status).toBe(200);
			expect((await v.post("/api/v1/agents/register", agentBody)).status).toBe(403);
			const forbidden = await v.get("/api/v1/audit");
			expect(forbidden.status).toBe(403);
			expect(forbidden.body.error.code).toBe("FORBIDDEN");
		});

		test("operator manages agents but may not read the audit log; admin may", async () => {
			const o = client(server.url, operator);
			expect((await o.post("/api/v1/agents/register", agentBody)).status).toBe(201);
			expect((await o.get("/api/v1/audit")).status).toBe(403);
			expect((await client(server.url, admin).get("/api/v1/audit")).status).toBe(200);
		});
	});

	describe("errors", () => {
		test("malformed JSON: 400", async () => {
			const res = await request(server.url, "POST", "/api/v1/agents/register", { token: operator, rawBody: "{\"name\": " });
			expect(res.status).toBe(400);
			expect(res.body.error.code).toBe("BAD_REQUEST");
		});

		test("a body over 1 MiB: 413", async () => {
			const huge = JSON.stringify({ ...agentBody, padding: "x".repeat(1024 * 1024 + 10) });
			const res = await request(server.url, "POST", "/api/v1/agents/register", { token: operator, rawBody: huge });
			expect(res.status).toBe(413);
			expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
		});

		test("unknown route: 404 with the contract's body", async () => {
			const res = await request(server.url, "GET", "/api/v1/nothing-here", { token: viewer });
			expect(res.status).toBe(404);
			expect(res.body.error.code).toBe("NOT_FOUND");
		});
	});

	test("CORS: the configured origin is allowed", async () => {
		const res = await fetch(`${server.url}/api/v1/agents`, {
			method: "OPTIONS",
			headers: { Origin: "https://dash.example.com", "Access-Control-Request-Method": "GET" }
		});
		expect(res.headers.get("access-control-allow-origin")).toBe("https://dash.example.com");
	});

	test("health and readiness need no token", async () => {
		const health = await request(server.url, "GET", "/health");
		expect(health.status).toBe(200);
		expect(health.body.status).toBe("ok");
		const ready = await request(server.url, "GET", "/ready");
		expect(ready.status).toBe(200);
		expect(ready.body).toMatchObject({ status: "ready", checks: { store: "ok" } });
	});

	test("audit: every mutating call recorded with who, what, target, result, time; filters and paging", async () => {
		const o = client(server.url, operator);
		const created = await o.post("/api/v1/agents/register", { ...agentBody, name: "audited" });
		await o.delete(`/api/v1/agents/${created.body.id}`);
		await o.delete(`/api/v1/agents/${created.body.id}`); // 404: a failure, also recorded
		const a = client(server.url, admin);
		const entries = await waitFor(async () => {
			const res = await a.get("/api/v1/audit?actor=olive&action=agents.remove");
			return res.body.entries?.length >= 2 ? res.body.entries : undefined;
		});
		expect(entries[0]).toMatchObject({ actor: "olive", action: "agents.remove", target: created.body.id, result: "failure", status: 404, method: "DELETE" });
		expect(entries[1]).toMatchObject({ result: "success", status: 200 });
		expect(Date.parse(entries[0].timestamp)).toBeGreaterThan(Date.now() - 60_000);
		const page = await a.get("/api/v1/audit?limit=1&offset=1&actor=olive");
		expect(page.body.entries).toHaveLength(1);
		expect(page.body.total).toBeGreaterThanOrEqual(3);
		const future = await a.get(`/api/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
		expect(future.body.entries).toEqual([]);
		// reads are not audited
		const reads = await a.get("/api/v1/audit?action=agents.list");
		expect(reads.body.total).toBe(0);
	});
});

describe("rate limiting", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({ RATE_LIMIT_PER_MINUTE: "5" }, ["api", "agents"])));
	afterAll(() => server.stop());

	test("per token subject: the 6th call in a minute is 429 with Retry-After and X-RateLimit-* headers", async () => {
		const token = server.token(["viewer"], "limited");
		const statuses: number[] = [];
		let last;
		for (let i = 0; i < 6; i++) {
			last = await request(server.url, "GET", "/api/v1/agents", { token });
			statuses.push(last.status);
		}
		expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
		expect(last!.body.error.code).toBe("RATE_LIMITED");
		expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(last!.headers.get("x-ratelimit-limit")).toBe("5");
		expect(last!.headers.get("x-ratelimit-remaining")).toBe("0");
		// another subject has its own budget
		expect((await request(server.url, "GET", "/api/v1/agents", { token: server.token(["viewer"], "other") })).status).toBe(200);
	});
});

describe("production mode", () => {
	test("refuses to start without JWT_SECRET and API_KEY", async () => {
		const { loadConfig } = await import("../../src/platform/config");
		expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/JWT_SECRET/);
		expect(() => loadConfig({ NODE_ENV: "production", JWT_SECRET: "s" })).toThrow(/API_KEY/);
	});
});
