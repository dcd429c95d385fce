/**
 * HTTP hygiene of the gateway against a real server: CORS only where configured (none in
 * production without CORS_ORIGINS), `nosniff` and `no-store` on every answer, a per-address cap on
 * unauthenticated socket.io and /ws connections, and DATA_DIR private to its user.
 */
import fs from "node:fs";
import path from "node:path";
import { io as ioClient, type Socket as IoClientSocket } from "socket.io-client";
import WebSocket from "ws";
import { loadConfig } from "../../src/platform/config";
import { tempDir, TEST_SECRETS } from "../support/broker";
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

// ---------- the per-address cap on unauthenticated real-time connections ----------

const CAP = 3;

interface WsClient {
	ws: WebSocket;
	closed: Promise<{ code: number; reason: string }>;
}

/** A /ws connection once open (not authenticated), or its close when the server refuses it at once. */
async function openWs(url: string): Promise<WsClient> {
	const ws = new WebSocket(`${url.replace("http", "ws")}/ws`);
	const closed = new Promise<{ code: number; reason: string }>(resolve => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
	await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
	return { ws, closed };
}

/** Is a just-opened /ws connection closed by the server at once (within `ms`)? */
async function refusedAtOnce(client: WsClient, ms = 1000): Promise<{ code: number; reason: string } | "open"> {
	return Promise.race([client.closed, new Promise<"open">(resolve => setTimeout(() => resolve("open"), ms))]);
}

function authenticateWs(client: WsClient, token: string): Promise<unknown> {
	return new Promise(resolve => {
		client.ws.once("message", data => resolve(JSON.parse(data.toString())));
		client.ws.send(JSON.stringify({ type: "auth", token }));
	});
}

/**
 * An engine.io connection that never sends socket.io's CONNECT (what a client that holds sockets
 * open without a token does; socket.io-client itself closes the connection once refused). Resolves
 * once the server's open packet came, or with the refusal of the upgrade.
 */
function openEngineOnly(url: string): Promise<{ ws: WebSocket; outcome: string }> {
	const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
	return new Promise(resolve => {
		ws.once("message", data => resolve({ ws, outcome: data.toString().startsWith("0") ? "open" : data.toString() }));
		ws.once("error", err => resolve({ ws, outcome: err.message }));
	});
}

/** A socket.io client; resolves with it and how its connection attempt ended. */
function openIo(url: string, auth: Record<string, unknown>): Promise<{ socket: IoClientSocket; outcome: string }> {
	const socket = ioClient(url, { auth, transports: ["websocket"], forceNew: true, reconnection: false });
	return new Promise(resolve => {
		socket.once("connect", () => resolve({ socket, outcome: "connected" }));
		socket.once("connect_error", err => resolve({ socket, outcome: `connect_error: ${err.message}` }));
	});
}

describe(`WS_MAX_UNAUTHENTICATED_PER_IP=${CAP}`, () => {
	let server: TestServer;
	const open: Array<{ close(): void }> = [];
	beforeEach(async () => (server = await startServer({ WS_MAX_UNAUTHENTICATED_PER_IP: String(CAP) }, ["api", "agents", "realtime"])));
	afterEach(async () => {
		for (const client of open.splice(0)) client.close();
		await server.stop();
	});
	const ws = async () => {
		const client = await openWs(server.url);
		open.push(client.ws);
		return client;
	};
	const io = async (auth: Record<string, unknown>) => {
		const client = await openIo(server.url, auth);
		open.push(client.socket);
		return client;
	};

	test("/ws: the connection over the cap is closed at once with 4429; authenticated ones stop counting", async () => {
		const waiting = [await ws(), await ws(), await ws()];
		expect(await refusedAtOnce(await ws())).toEqual({ code: 4429, reason: "too many unauthenticated connections from this address" });
		for (const client of waiting) expect(await refusedAtOnce(client, 50)).toBe("open");

		for (const client of waiting) expect(await authenticateWs(client, server.token(["viewer"]))).toEqual({ type: "auth_ok" });
		const more = [await ws(), await ws(), await ws()];
		for (const client of more) expect(await refusedAtOnce(client, 50)).toBe("open");
		expect(await refusedAtOnce(await ws())).toMatchObject({ code: 4429 });
	});

	test("socket.io: connections that have not authenticated count, on one budget with /ws; the one over it gets connect_error", async () => {
		const engineOnly = async () => {
			const client = await openEngineOnly(server.url);
			open.push(client.ws);
			return client.outcome;
		};
		expect(await engineOnly()).toBe("open");
		expect(await engineOnly()).toBe("open");
		await ws();
		// The cap is reached: a socket.io client is refused before it can show its token, the others too.
		expect((await io({ token: server.token(["viewer"]) })).outcome).toMatch(/^connect_error: /);
		expect(await engineOnly()).toBe("Unexpected server response: 400");
		const polling = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
		expect({ status: polling.status, body: await polling.json() }).toEqual({ status: 403, body: { code: 4, message: "too many unauthenticated connections from this address" } });
		expect(await refusedAtOnce(await ws())).toMatchObject({ code: 4429 });

		// One of them leaves: there is room again.
		open[0].close();
		const again = await waitForIo(() => io({ token: server.token(["viewer"]) }));
		expect(again.outcome).toBe("connected");
		// A client whose token is refused closes its connection (socket.io-client does): it holds no share.
		expect((await io({ token: "not.a.jwt" })).outcome).toBe("connect_error: unauthorized: Invalid token");
	});

	test("socket.io: authenticated connections do not count", async () => {
		for (let i = 0; i < CAP + 1; i++) expect((await io({ token: server.token(["viewer"]) })).outcome).toBe("connected");
		const waiting = [await ws(), await ws(), await ws()];
		for (const client of waiting) expect(await refusedAtOnce(client, 50)).toBe("open");
		expect(await refusedAtOnce(await ws())).toMatchObject({ code: 4429 });
	});
});

/** A close is seen by the server a moment after the client: try until the connection is taken. */
async function waitForIo(attempt: () => Promise<{ socket: IoClientSocket; outcome: string }>, ms = 5000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const result = await attempt();
		if (result.outcome === "connected" || Date.now() > deadline) return result;
		await new Promise(r => setTimeout(r, 50));
	}
}

// ---------- DATA_DIR ----------

function modeOf(file: string): string {
	return (fs.statSync(file).mode & 0o777).toString(8);
}

describe("DATA_DIR", () => {
	test("is created 0700, and its files (the generated secrets, the embedded store) are 0600, across a restart too", async () => {
		const parent = tempDir("mcp-datadir-");
		const dataDir = path.join(parent, "nested", "data");
		const development = { DATA_DIR: dataDir, JWT_SECRET: undefined, API_KEY: undefined };
		let server = await startServer(development);
		try {
			const operator = server.token(["operator"]);
			expect((await request(server.url, "POST", "/api/v1/tasks", { token: operator, body: { type: "analysis" } })).status).toBe(201);
		} finally {
			await server.stop();
		}
		expect(server.config.secretsGenerated).toBe(true);
		expect({ nested: modeOf(path.join(parent, "nested")), data: modeOf(dataDir) }).toEqual({ nested: "700", data: "700" });
		const files = () => fs.readdirSync(dataDir).sort();
		expect(files()).toEqual(expect.arrayContaining([".secrets.json", "agents.db", "audit.db", "pipeline_runs.db", "pipelines.db", "tasks.db"]));
		for (const file of files()) expect({ file, mode: modeOf(path.join(dataDir, file)) }).toEqual({ file, mode: "600" });

		// Files an older version left readable to others are private again once loaded (NeDB compacts on load).
		fs.chmodSync(path.join(dataDir, "tasks.db"), 0o644);
		fs.chmodSync(path.join(dataDir, ".secrets.json"), 0o644);
		fs.writeFileSync(path.join(dataDir, ".secrets.json"), JSON.stringify({ jwt_secret: "older", api_key: "older" }));
		server = await startServer(development);
		await server.stop();
		for (const file of files()) expect({ file, mode: modeOf(path.join(dataDir, file)) }).toEqual({ file, mode: "600" });
	});
});
