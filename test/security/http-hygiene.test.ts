/**
 * HTTP hygiene of the gateway against a real server: CORS only where configured (none in
 * production without CORS_ORIGINS), and `nosniff` and `no-store` on every answer.
 */
import { loadConfig } from "../../src/platform/config";
import { TEST_SECRETS } from "../support/broker";
import { request } from "../support/http";
import { startServer, type TestServer } from "../support/server";

jest.setTimeout(60_000);

const ORIGIN = "https://elsewhere.example";

/** The Access-Control-* headers of an answer. */
function corsHeaders(headers: Headers): Record<string, string> {
	return Object.fromEntries([...headers].filter(([name]) => name.startsWith("access-control-")));
}

/** The socket.io handshake (long-polling), as a browser on another site would send it. */
const ioHandshake = (url: string) => fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: ORIGIN } });

describe("CORS", () => {
	test("CORS_ORIGINS unset: any origin in development, none in production; a list or * when set", () => {
		const production = { NODE_ENV: "production", ...TEST_SECRETS };
		expect(loadConfig({}).corsOrigins).toBe("*");
		expect(loadConfig(production).corsOrigins).toEqual([]);
		expect(loadConfig({ ...production, CORS_ORIGINS: "https://a, https://b" }).corsOrigins).toEqual(["https://a", "https://b"]);
		expect(loadConfig({ ...production, CORS_ORIGINS: "*" }).corsOrigins).toBe("*");
	});

	describe("production without CORS_ORIGINS", () => {
		let server: TestServer;
		beforeAll(async () => (server = await startServer({ NODE_ENV: "production", CORS_ORIGINS: undefined })));
		afterAll(() => server.stop());

		test("a request from another origin gets no Access-Control-* header: REST, preflight, probes, errors, socket.io", async () => {
			const token = server.token(["viewer"]);
			const answers = [
				await request(server.url, "GET", "/api/v1/agents", { token, headers: { Origin: ORIGIN } }),
				await request(server.url, "OPTIONS", "/api/v1/tasks", { headers: { Origin: ORIGIN, "Access-Control-Request-Method": "POST" } }),
				await request(server.url, "GET", "/health", { headers: { Origin: ORIGIN } }),
				await request(server.url, "GET", "/api/v1/agents", { headers: { Origin: ORIGIN } }),
				await request(server.url, "GET", "/no/such/path", { headers: { Origin: ORIGIN } })
			];
			// The preflight is routed to the alias and refused there: there is no CORS answer to give.
			expect(answers.map(a => a.status)).toEqual([200, 401, 200, 401, 404]);
			for (const answer of answers) expect(corsHeaders(answer.headers)).toEqual({});
			const handshake = await ioHandshake(server.url);
			await handshake.text();
			expect(handshake.status).toBe(200);
			expect(corsHeaders(handshake.headers)).toEqual({});
		});
	});

	describe("development without CORS_ORIGINS", () => {
		let server: TestServer;
		beforeAll(async () => (server = await startServer({ CORS_ORIGINS: undefined }, ["api", "agents", "realtime"])));
		afterAll(() => server.stop());

		test("still answers any origin, REST and socket.io", async () => {
			const res = await request(server.url, "GET", "/api/v1/agents", { token: server.token(["viewer"]), headers: { Origin: ORIGIN } });
			expect(res.status).toBe(200);
			expect(res.headers.get("access-control-allow-origin")).toBe("*");
			const preflight = await request(server.url, "OPTIONS", "/api/v1/tasks", { headers: { Origin: ORIGIN, "Access-Control-Request-Method": "POST" } });
			expect(preflight.status).toBe(204);
			expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
			const handshake = await ioHandshake(server.url);
			await handshake.text();
			expect(handshake.headers.get("access-control-allow-origin")).toBe("*");
		});
	});
});

describe("nosniff and no-store on every answer", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({ METRICS_ENABLED: "true", METRICS_TOKEN: "scrape-token" })));
	afterAll(() => server.stop());

	test("200s, error bodies (404, 401, 422) and the ops routes", async () => {
		const token = server.token(["operator"]);
		const answers = {
			"GET /api/v1/agents": await request(server.url, "GET", "/api/v1/agents", { token }),
			"GET /api/v1/tasks/unknown": await request(server.url, "GET", "/api/v1/tasks/no-such-task", { token }),
			"GET /no/such/path": await request(server.url, "GET", "/no/such/path"),
			"GET /api/v1/agents without a token": await request(server.url, "GET", "/api/v1/agents"),
			"POST /api/v1/tasks invalid": await request(server.url, "POST", "/api/v1/tasks", { token, body: { type: 42 } }),
			"GET /health": await request(server.url, "GET", "/health"),
			"GET /ready": await request(server.url, "GET", "/ready"),
			"GET /metrics": await request(server.url, "GET", "/metrics", { headers: { Authorization: "Bearer scrape-token" } }),
			"GET /metrics without its token": await request(server.url, "GET", "/metrics")
		};
		expect(Object.fromEntries(Object.entries(answers).map(([name, a]) => [name, a.status]))).toEqual({
			"GET /api/v1/agents": 200,
			"GET /api/v1/tasks/unknown": 404,
			"GET /no/such/path": 404,
			"GET /api/v1/agents without a token": 401,
			"POST /api/v1/tasks invalid": 422,
			"GET /health": 200,
			"GET /ready": 200,
			"GET /metrics": 200,
			"GET /metrics without its token": 401
		});
		for (const [name, answer] of Object.entries(answers))
			expect({ name, nosniff: answer.headers.get("x-content-type-options"), cache: answer.headers.get("cache-control") }).toEqual({ name, nosniff: "nosniff", cache: "no-store" });
		// The error bodies are the contract's.
		expect(answers["GET /no/such/path"].body).toMatchObject({ error: { code: "NOT_FOUND" } });
	});
});
