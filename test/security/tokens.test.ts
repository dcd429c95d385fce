/**
 * HS256 token rules (contract, "Hardening"): `exp` required, only access tokens (Flask-JWT-Extended
 * signs refresh tokens with the same secret), the roles under JWT_ROLES_CLAIM, `iss`/`aud` checked
 * when JWT_ISSUER/JWT_AUDIENCE are set; and every token we mint passes those rules. First the
 * functions, then a real server over HTTP, socket.io and /ws, and `npm run token` as a process.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import jwt from "jsonwebtoken";
import { io as ioClient } from "socket.io-client";
import WebSocket from "ws";
import { ConfigError, loadConfig, type JwtSettings } from "../../src/platform/config";
import { tokenCommand } from "../../src/platform/repl-commands";
import { mintToken, TokenError, verifyToken, verifyTokenClaims } from "../../src/platform/tokens";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { request, waitFor } from "../support/http";
import { complete, startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";

const SECRET = "security-unit-secret";
const nowSec = () => Math.floor(Date.now() / 1000);

/** An access token as Flask-JWT-Extended 4 issues it: its own claims, then the app's extra claims. */
function flaskToken(claims: Record<string, unknown> = {}, secret = SECRET): string {
	const iat = nowSec();
	return jwt.sign({ fresh: false, iat, jti: randomUUID(), type: "access", sub: "42", nbf: iat, exp: iat + 900, roles: ["viewer"], ...claims }, secret);
}

/** The same without a claim (jwt.sign would add none, but `exp` must really be absent). */
function without(claim: string, claims: Record<string, unknown> = {}, secret = SECRET): string {
	const iat = nowSec();
	const all: Record<string, unknown> = { type: "access", sub: "42", iat, exp: iat + 900, roles: ["viewer"], ...claims };
	delete all[claim];
	return jwt.sign(all, secret);
}

const decode = (token: string) => jwt.decode(token) as jwt.JwtPayload;

describe("verifyToken", () => {
	test("a token as Flask-JWT-Extended issues it is accepted", () => {
		expect(verifyToken(SECRET, flaskToken())).toEqual({ sub: "42", roles: ["viewer"] });
	});

	test("no exp: refused", () => {
		expect(() => verifyToken(SECRET, without("exp"))).toThrow(new TokenError("Token has no expiry"));
	});

	test('type "access" or no type is accepted; "refresh" or anything else is refused', () => {
		expect(verifyToken(SECRET, flaskToken({ type: "access" })).sub).toBe("42");
		expect(verifyToken(SECRET, without("type")).sub).toBe("42");
		for (const type of ["refresh", "id", "", null, 1])
			expect(() => verifyToken(SECRET, flaskToken({ type }))).toThrow(new TokenError("Not an access token"));
	});

	test("the roles come from the configured claim only", () => {
		const settings: JwtSettings = { rolesClaim: "permissions" };
		const token = flaskToken({ permissions: ["operator", "superuser"], roles: ["admin"] });
		expect(verifyToken(SECRET, token, settings)).toEqual({ sub: "42", roles: ["operator"] });
		// A URL-style claim name (as identity providers namespace theirs) is one name, not a path.
		expect(verifyToken(SECRET, flaskToken({ "https://example.com/roles": ["admin"] }), { rolesClaim: "https://example.com/roles" }).roles).toEqual(["admin"]);
		// With the default claim, `permissions` means nothing.
		expect(verifyToken(SECRET, flaskToken({ permissions: ["admin"], roles: undefined })).roles).toEqual([]);
	});

	test("iss and aud are checked when configured, ignored otherwise", () => {
		const settings: JwtSettings = { rolesClaim: "roles", issuer: "flask-app", audience: "mcp-server" };
		expect(verifyToken(SECRET, flaskToken({ iss: "flask-app", aud: "mcp-server" }), settings).sub).toBe("42");
		expect(verifyToken(SECRET, flaskToken({ iss: "flask-app", aud: ["other", "mcp-server"] }), settings).sub).toBe("42");
		expect(() => verifyToken(SECRET, flaskToken({ iss: "elsewhere", aud: "mcp-server" }), settings)).toThrow(/issuer/);
		expect(() => verifyToken(SECRET, flaskToken({ aud: "mcp-server" }), settings)).toThrow(/issuer/);
		expect(() => verifyToken(SECRET, flaskToken({ iss: "flask-app", aud: "other" }), settings)).toThrow(/audience/);
		expect(() => verifyToken(SECRET, flaskToken({ iss: "flask-app" }), settings)).toThrow(/audience/);
		expect(verifyToken(SECRET, flaskToken({ iss: "anyone", aud: "anything" })).sub).toBe("42");
	});

	test("the expiry comes back with the caller", () => {
		const token = flaskToken();
		expect(verifyTokenClaims(SECRET, token).expiresAt).toBe(decode(token).exp! * 1000);
	});
});

describe("mintToken", () => {
	const settings: JwtSettings = { rolesClaim: "permissions", issuer: "flask-app", audience: "mcp-server" };

	test("always an exp, the roles under the configured claim, iss and aud when configured: it passes our own check", () => {
		const token = mintToken(SECRET, { sub: "agent:a1", roles: ["agent"], agent_id: "a1", expiresInSec: 120 }, settings);
		const claims = decode(token);
		expect(claims).toMatchObject({ sub: "agent:a1", permissions: ["agent"], agent_id: "a1", iss: "flask-app", aud: "mcp-server" });
		expect(claims.roles).toBeUndefined();
		expect(claims.exp! - claims.iat!).toBe(120);
		expect(verifyToken(SECRET, token, settings)).toEqual({ sub: "agent:a1", roles: ["agent"], agent_id: "a1" });
		const plain = decode(mintToken(SECRET, { sub: "u", roles: ["viewer"], expiresInSec: 60 }));
		expect(plain).not.toHaveProperty("iss");
		expect(plain).not.toHaveProperty("aud");
	});

	test("a lifetime is required", () => {
		for (const expiresInSec of [0, -1, NaN, undefined])
			expect(() => mintToken(SECRET, { sub: "u", roles: ["viewer"], expiresInSec: expiresInSec as number })).toThrow(/expiresInSec/);
	});

	test("the REPL's token command mints under the configured rules", () => {
		const token = tokenCommand(SECRET, { roles: "operator", sub: "alice", expiresIn: 60 }, settings).split("\n")[0];
		expect(verifyToken(SECRET, token, settings)).toEqual({ sub: "alice", roles: ["operator"] });
		expect(decode(token)).toMatchObject({ iss: "flask-app", aud: "mcp-server", permissions: ["operator"] });
	});
});

describe("configuration", () => {
	test("JWT_ROLES_CLAIM defaults to roles and may not name a registered claim", () => {
		expect(loadConfig({}).jwt).toEqual({ rolesClaim: "roles", issuer: undefined, audience: undefined });
		expect(loadConfig({ JWT_ROLES_CLAIM: "permissions", JWT_ISSUER: "i", JWT_AUDIENCE: "a" }).jwt).toEqual({ rolesClaim: "permissions", issuer: "i", audience: "a" });
		for (const claim of ["sub", "exp", "type", "agent_id"]) expect(() => loadConfig({ JWT_ROLES_CLAIM: claim })).toThrow(ConfigError);
	});
});

// ---------- a real server ----------

const RULES = { JWT_ROLES_CLAIM: "permissions", JWT_ISSUER: "flask-app", JWT_AUDIENCE: "mcp-server" };
const serverToken = (claims: Record<string, unknown> = {}) =>
	flaskToken({ roles: undefined, permissions: ["viewer"], iss: RULES.JWT_ISSUER, aud: RULES.JWT_AUDIENCE, ...claims }, TEST_SECRETS.JWT_SECRET);

describe("over HTTP, with the default rules", () => {
	let server: TestServer;
	beforeAll(async () => (server = await startServer({}, ["api", "agents"])));
	afterAll(() => server.stop());
	const get = (token: string) => request(server.url, "GET", "/api/v1/agents", { token });

	test("a Flask access token works; without exp or as a refresh token it is 401 with the contract's body", async () => {
		expect((await get(flaskToken({}, TEST_SECRETS.JWT_SECRET))).status).toBe(200);
		expect((await get(flaskToken({ sub: "u".repeat(255) }, TEST_SECRETS.JWT_SECRET))).status).toBe(200);
		for (const [token, message] of [
			[without("exp", {}, TEST_SECRETS.JWT_SECRET), "Token has no expiry"],
			[flaskToken({ type: "refresh" }, TEST_SECRETS.JWT_SECRET), "Not an access token"],
			// A subject is stored with what the caller makes (created_by): one too long to store is refused at the door.
			[flaskToken({ sub: "u".repeat(256) }, TEST_SECRETS.JWT_SECRET), "Token subject longer than 255 characters"]
		]) {
			const res = await get(token);
			expect(res.status).toBe(401);
			expect(res.body).toEqual({ error: { code: "UNAUTHORIZED", message } });
		}
	});
});

describe("over HTTP, socket.io and /ws, with JWT_ROLES_CLAIM, JWT_ISSUER and JWT_AUDIENCE", () => {
	let server: TestServer;
	let agent: HttpAgent;
	beforeAll(async () => {
		server = await startServer({ ...RULES, AGENT_TOKEN_TTL_SEC: "7200", HEALTH_CHECK_INTERVAL_MS: "60000" });
		agent = await startHttpAgent();
	});
	afterAll(async () => {
		await server.stop();
		await agent.close();
	});
	const get = (token: string) => request(server.url, "GET", "/api/v1/agents", { token });

	test("a Flask token under the configured rules works; type access too; refresh, no exp, wrong iss or aud: 401", async () => {
		expect((await get(serverToken())).status).toBe(200);
		expect((await get(serverToken({ type: "access" }))).status).toBe(200);
		for (const token of [
			serverToken({ type: "refresh" }),
			without("exp", { roles: undefined, permissions: ["viewer"], iss: RULES.JWT_ISSUER, aud: RULES.JWT_AUDIENCE }, TEST_SECRETS.JWT_SECRET),
			serverToken({ iss: "elsewhere" }),
			serverToken({ iss: undefined }),
			serverToken({ aud: "someone-else" }),
			serverToken({ aud: undefined })
		]) {
			const res = await get(token);
			expect(res.status).toBe(401);
			expect(res.body.error.code).toBe("UNAUTHORIZED");
		}
	});

	test("roles under another claim than the configured one grant nothing: 403", async () => {
		expect((await get(serverToken({ permissions: undefined, roles: ["admin"] }))).status).toBe(403);
	});

	test("tokens we mint pass: the test helper's, auth.token's, the agent's and the task callback's", async () => {
		expect((await get(server.token(["viewer"]))).status).toBe(200);

		const exchanged = await request(server.url, "POST", "/api/v1/auth/token", { body: { api_key: TEST_SECRETS.API_KEY, sub: "ci-bot", roles: ["operator"], expires_in: 300 } });
		expect(exchanged.status).toBe(200);
		expect(decode(exchanged.body.token)).toMatchObject({ sub: "ci-bot", permissions: ["operator"], iss: RULES.JWT_ISSUER, aud: RULES.JWT_AUDIENCE, exp: expect.any(Number) });
		const operator = exchanged.body.token as string;

		const registered = await request(server.url, "POST", "/api/v1/agents/register", {
			token: operator,
			body: { name: `rules-agent-${randomUUID()}`, type: "worker", capabilities: ["rules-check"], endpoints: { task: agent.endpoints.task } }
		});
		expect(registered.status).toBe(201);
		const agentClaims = decode(registered.body.token);
		expect(agentClaims).toMatchObject({ permissions: ["agent"], agent_id: registered.body.id, iss: RULES.JWT_ISSUER, aud: RULES.JWT_AUDIENCE });
		expect(agentClaims.exp! - agentClaims.iat!).toBe(7200);
		expect((await request(server.url, "POST", `/api/v1/agents/${registered.body.id}/heartbeat`, { token: registered.body.token, body: {} })).status).toBe(200);

		// The callback token reaches the agent with the delivery, and the agent completes the task with it.
		agent.script = complete({ ok: true });
		const task = await request(server.url, "POST", "/api/v1/tasks", { token: operator, body: { type: "rules-check" } });
		expect(task.status).toBe(201);
		await waitFor(async () => (await request(server.url, "GET", `/api/v1/tasks/${task.body.task_id}`, { token: operator })).body.status === "completed");
		const delivery = agent.deliveries.find(d => d.task_id === task.body.task_id)!;
		expect(decode(delivery.callback_token)).toMatchObject({ permissions: ["agent"], task_id: task.body.task_id, iss: RULES.JWT_ISSUER, aud: RULES.JWT_AUDIENCE, exp: expect.any(Number) });
	});

	test("socket.io and /ws verify with the same rules", async () => {
		const ioOutcome = (token: string) =>
			new Promise<string>(resolve => {
				const socket = ioClient(server.url, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
				socket.once("connect", () => (socket.close(), resolve("connected")));
				socket.once("connect_error", err => (socket.close(), resolve(err.message)));
			});
		const wsOutcome = (token: string) =>
			new Promise<string>((resolve, reject) => {
				const ws = new WebSocket(`${server.url.replace("http", "ws")}/ws`);
				ws.once("open", () => ws.send(JSON.stringify({ type: "auth", token })));
				ws.once("message", data => (ws.close(), resolve((JSON.parse(data.toString()) as { type: string; message?: string }).type)));
				ws.once("error", reject);
			});
		expect(await ioOutcome(server.token(["viewer"]))).toBe("connected");
		expect(await ioOutcome(serverToken())).toBe("connected");
		expect(await ioOutcome(serverToken({ iss: "elsewhere" }))).toBe("unauthorized: Token issuer not accepted");
		expect(await ioOutcome(serverToken({ type: "refresh" }))).toBe("unauthorized: Not an access token");
		expect(await wsOutcome(serverToken())).toBe("auth_ok");
		expect(await wsOutcome(serverToken({ aud: "someone-else" }))).toBe("auth_error");
	});
});

describe("npm run token", () => {
	const TOKEN_JS = path.resolve(__dirname, "../../dist/scripts/token.js");

	(fs.existsSync(TOKEN_JS) ? test : test.skip)("mints under the configured rules (needs `npm run build`, which npm test runs)", () => {
		const env = { PATH: process.env.PATH, HOME: tempDir("mcp-token-home-"), DATA_DIR: tempDir("mcp-token-data-"), LOG_LEVEL: "warn", ...TEST_SECRETS, ...RULES };
		const result = spawnSync(process.execPath, [TOKEN_JS, "--roles", "operator", "--sub", "alice"], { env, encoding: "utf8", timeout: 20_000 });
		expect(result.status).toBe(0);
		const settings: JwtSettings = { rolesClaim: RULES.JWT_ROLES_CLAIM, issuer: RULES.JWT_ISSUER, audience: RULES.JWT_AUDIENCE };
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, result.stdout.trim(), settings)).toEqual({ sub: "alice", roles: ["operator"] });
	});
});
