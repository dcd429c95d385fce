/**
 * OAuth2 / OpenID Connect access tokens beside HS256 ones (contract, "Identity and access"), against
 * a real authorization server: oidc-provider with the client-credentials grant, JWT access tokens for
 * our audience (resource indicators), the client's roles in an extra claim, RS256, PS256 and ES256
 * keys made when it starts (test/support/oidc-issuer.mjs). Over REST, socket.io, /ws and the
 * transporter; what is refused and how; key rotation and the rate limit on key refreshes.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import net from "node:net";
import type { ServiceBroker } from "moleculer";
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT } from "jose";
import jwt from "jsonwebtoken";
import { io as ioClient } from "socket.io-client";
import WebSocket from "ws";
import { TokenError } from "../../src/platform/tokens";
import { createTokenVerifier, JWKS_COOLDOWN_MS, JWKS_MAX_AGE_MS } from "../../src/platform/verify-token";
import { createTestBroker, testConfig, TEST_SECRETS } from "../support/broker";
import { freePort } from "../support/cluster";
import { request, waitFor } from "../support/http";
import { startIssuer, type Issuer, type IssuerClient } from "../support/oidc";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const AUDIENCE = "urn:mcp-server";
const ROLES_CLAIM = "mcp_roles";
const CLIENTS: IssuerClient[] = [
	{ client_id: "reporting", roles: ["viewer"], alg: "RS256" },
	// One role as a string, as some IdPs put a single value.
	{ client_id: "deployer", roles: "operator", alg: "PS256" },
	// An IdP may hand out names we do not know, or ours for machines: only user roles are kept.
	{ client_id: "ops-console", roles: ["operator", "agent", "system", "superuser"], alg: "ES256" },
	// Roles under another claim than OIDC_ROLES_CLAIM grant nothing.
	{ client_id: "misconfigured", roles: ["admin"], roles_claim: "roles", alg: "ES256" },
	// A subject the cluster gives its own nodes.
	{ client_id: "system:core-1", roles: ["admin"], alg: "ES256" },
	{ client_id: "short-lived", roles: ["viewer"], alg: "ES256", ttl: 1 }
];
const oidcEnv = (issuer: Issuer) => ({ OIDC_ISSUER: issuer.url, OIDC_AUDIENCE: AUDIENCE, OIDC_ROLES_CLAIM: ROLES_CLAIM });

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A token with the claims of `token` under another header, HMAC-signed with `secret` (or unsigned for `none`). */
function resigned(token: string, header: Record<string, unknown>, secret?: string): string {
	const signingInput = `${b64url(header)}.${b64url(decodeJwt(token))}`;
	return `${signingInput}.${secret === undefined ? "" : createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}

/** A token as the issuer would make it (its iss, our audience, roles), signed by a key it never published. */
async function forged(issuer: Issuer, kid: string, claims: Record<string, unknown> = {}): Promise<string> {
	const { privateKey } = await generateKeyPair("ES256");
	return new SignJWT({ [ROLES_CLAIM]: ["admin"], ...claims })
		.setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid })
		.setIssuer(issuer.url)
		.setAudience(AUDIENCE)
		.setSubject("reporting")
		.setIssuedAt()
		.setExpirationTime("10m")
		.sign(privateKey);
}

const flaskToken = (claims: Record<string, unknown> = {}) =>
	jwt.sign({ type: "access", sub: "42", roles: ["viewer"], ...claims }, TEST_SECRETS.JWT_SECRET, { expiresIn: 900 });

function ioOutcome(url: string, token: string): Promise<string> {
	return new Promise(resolve => {
		const socket = ioClient(url, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
		socket.once("connect", () => (socket.close(), resolve("connected")));
		socket.once("connect_error", err => (socket.close(), resolve(err.message)));
	});
}

/** The /ws handshake: `auth`, then at once (before the answer) a subscribe, both answered in order. */
function wsOutcome(url: string, token: string): Promise<string[]> {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws`);
		const replies: string[] = [];
		ws.once("open", () => {
			ws.send(JSON.stringify({ type: "auth", token }));
			ws.send(JSON.stringify({ type: "subscribe", agent_id: "any" }));
		});
		ws.on("message", data => {
			const message = JSON.parse(data.toString()) as { type: string; message?: string };
			replies.push(message.type === "auth_error" ? `auth_error: ${message.message}` : message.type);
			if (replies.length === 2 || message.type === "auth_error") ws.close();
		});
		ws.once("close", () => resolve(replies));
		ws.once("error", reject);
	});
}

describe("OIDC access tokens beside HS256 tokens (one issuer, RS256 / PS256 / ES256)", () => {
	let issuer: Issuer;
	let otherIssuer: Issuer;
	let server: TestServer;
	const get = (token: string) => request(server.url, "GET", "/api/v1/agents", { token });
	const submit = (token: string) => request(server.url, "POST", "/api/v1/tasks", { token, body: { type: "oidc-check" } });

	beforeAll(async () => {
		[issuer, otherIssuer] = await Promise.all([
			startIssuer({ audience: AUDIENCE, rolesClaim: ROLES_CLAIM, clients: CLIENTS }),
			startIssuer({ audience: AUDIENCE, rolesClaim: ROLES_CLAIM, clients: CLIENTS })
		]);
		server = await startServer(oidcEnv(issuer));
	});
	afterAll(async () => {
		await server?.stop();
		await Promise.all([issuer?.stop(), otherIssuer?.stop()]);
	});

	test("a client-credentials token works over REST with its roles: viewer reads, operator writes, each algorithm", async () => {
		const viewer = await issuer.token("reporting");
		const operator = await issuer.token("deployer");
		const opsConsole = await issuer.token("ops-console");
		expect([viewer, operator, opsConsole].map(t => decodeProtectedHeader(t).alg)).toEqual(["RS256", "PS256", "ES256"]);
		expect(decodeJwt(operator)).toMatchObject({ iss: issuer.url, aud: AUDIENCE, sub: "deployer", [ROLES_CLAIM]: "operator" });

		for (const token of [viewer, operator, opsConsole]) expect((await get(token)).status).toBe(200);
		const refused = await submit(viewer);
		expect(refused.status).toBe(403);
		expect(refused.body.error.code).toBe("FORBIDDEN");
		expect((await submit(operator)).status).toBe(201);
		// `agent` and `system` from outside are dropped, `operator` kept.
		expect((await submit(opsConsole)).status).toBe(201);
		expect((await request(server.url, "GET", "/api/v1/audit", { token: opsConsole })).status).toBe(403);
	});

	test("roles come from OIDC_ROLES_CLAIM only; a subject the cluster keeps for its nodes is refused", async () => {
		const misconfigured = await issuer.token("misconfigured");
		expect(decodeJwt(misconfigured).roles).toEqual(["admin"]);
		expect((await get(misconfigured)).status).toBe(403);
		const posing = await get(await issuer.token("system:core-1"));
		expect(posing.status).toBe(401);
		expect(posing.body.error.message).toBe("Token subject not accepted");
	});

	test("the audit log names the token's subject", async () => {
		const created = await submit(await issuer.token("deployer"));
		expect(created.status).toBe(201);
		const entries = await waitFor(async () => {
			const res = await request(server.url, "GET", "/api/v1/audit?actor=deployer&action=tasks.create", { token: server.token(["admin"]) });
			return res.body.entries?.some((e: { target: string }) => e.target === created.body.task_id) ? res.body.entries : undefined;
		});
		expect(entries.find((e: { target: string }) => e.target === created.body.task_id)).toMatchObject({ actor: "deployer", roles: ["operator"], result: "success", status: 201 });
	});

	test("socket.io and /ws accept the issuer's tokens and refuse a wrong audience", async () => {
		const viewer = await issuer.token("reporting");
		const wrongAudience = await issuer.token("reporting", { resource: "urn:other-api" });
		expect(await ioOutcome(server.url, viewer)).toBe("connected");
		expect(await ioOutcome(server.url, await issuer.token("ops-console"))).toBe("connected");
		expect(await ioOutcome(server.url, wrongAudience)).toBe("unauthorized: Token audience not accepted");
		expect(await wsOutcome(server.url, viewer)).toEqual(["auth_ok", "subscribed"]);
		expect(await wsOutcome(server.url, wrongAudience)).toEqual(["auth_error: Token audience not accepted"]);
	});

	test("a connected client gets events: the session is real", async () => {
		const socket = ioClient(server.url, { auth: { token: await issuer.token("reporting") }, transports: ["websocket"], forceNew: true, reconnection: false });
		const updates: Array<{ task_id: string }> = [];
		socket.on("task_update", (m: { task_id: string }) => updates.push(m));
		await new Promise<void>((resolve, reject) => (socket.once("connect", resolve), socket.once("connect_error", reject)));
		try {
			const created = await submit(await issuer.token("deployer"));
			await waitFor(async () => updates.some(u => u.task_id === created.body.task_id));
		} finally {
			socket.close();
		}
	});

	test("refused with 401: wrong audience, wrong issuer, unknown key, expired or without exp, alg switched to HS256 with the issuer's public key, alg none", async () => {
		const genuine = await issuer.token("reporting");
		const claims = decodeJwt(genuine);
		const published = (await issuer.jwks()).keys;
		const rsa = published.find(k => k.alg === "RS256")!;
		const publicPem = await exportSPKI((await importJWK(rsa, "RS256")) as Parameters<typeof exportSPKI>[0]);

		const shortLived = await issuer.token("short-lived");
		const expiresAt = decodeJwt(shortLived).exp! * 1000;
		await sleep(Math.max(0, expiresAt - Date.now() + 100));

		const cases: Array<[string, string, string]> = [
			["wrong audience", await issuer.token("reporting", { resource: "urn:other-api" }), "Token audience not accepted"],
			["wrong issuer", await otherIssuer.token("reporting"), "Token issuer not accepted"],
			["unknown key, unknown kid", await forged(issuer, `es256-${randomUUID()}`), "Token signing key not known"],
			["unknown key, a published kid", await forged(issuer, published.find(k => k.alg === "ES256")!.kid), "Invalid token"],
			["expired", shortLived, "Token expired"],
			["HS256 with the issuer's public key (PEM)", resigned(genuine, { alg: "HS256", typ: "JWT" }, publicPem), "Invalid token"],
			["HS256 with the issuer's public key (JWK)", resigned(genuine, { alg: "HS256", typ: "JWT", kid: rsa.kid }, JSON.stringify(rsa)), "Invalid token"],
			["no exp", await issuer.sign("ES256", { ...claims, exp: undefined }), "Token has no expiry"],
			["a refresh token", await issuer.sign("RS256", { ...claims, type: "refresh" }), "Not an access token"],
			["alg none", resigned(genuine, { alg: "none", typ: "JWT" }), "Token algorithm not accepted"],
			["another algorithm", resigned(genuine, { alg: "HS512", typ: "JWT" }, "x"), "Token algorithm not accepted"]
		];
		for (const [what, token, message] of cases) {
			const res = await get(token);
			expect({ what, status: res.status, body: res.body }).toEqual({ what, status: 401, body: { error: { code: "UNAUTHORIZED", message } } });
		}
		// Our server never asked the other issuer anything: a token naming it is refused before any fetch.
		expect(Object.keys(await otherIssuer.requests()).sort()).toEqual(["/.well-known/openid-configuration", "/token"]);
		expect((await otherIssuer.requests())["/.well-known/openid-configuration"]).toBe(1);
	});

	test("HS256 tokens keep working beside OIDC: Flask's, ours, over REST, socket.io and /ws", async () => {
		expect((await get(flaskToken())).status).toBe(200);
		expect((await submit(server.token(["operator"]))).status).toBe(201);
		expect((await submit(flaskToken({ roles: ["operator"] }))).status).toBe(201);
		expect(await ioOutcome(server.url, flaskToken())).toBe("connected");
		expect(await wsOutcome(server.url, flaskToken())).toEqual(["auth_ok", "subscribed"]);
		// …and only with JWT_SECRET.
		expect((await get(jwt.sign({ sub: "42", roles: ["viewer"] }, "another-secret", { expiresIn: 60 }))).status).toBe(401);
	});
});

describe("the issuer's keys: fetched on first use, refreshed at most once per cooldown, rotation picked up without a restart", () => {
	let issuer: Issuer;
	let server: TestServer;
	let clockOffset = 0;
	const get = (token: string) => request(server.url, "GET", "/api/v1/agents", { token });
	/** Requests our server made to the issuer (the helper's own discovery left out). */
	const fetches = async () => {
		const requests = await issuer.requests();
		return { discovery: (requests["/.well-known/openid-configuration"] ?? 0) - 1, jwks: requests["/jwks"] ?? 0 };
	};

	beforeAll(async () => {
		issuer = await startIssuer({ audience: AUDIENCE, rolesClaim: ROLES_CLAIM, clients: [{ client_id: "rotating", roles: ["viewer"], alg: "ES256" }] });
		server = await startServer(oidcEnv(issuer), ["api", "agents"]);
		// Time passes for the server's clock only (jose's cooldown and key cache age); token expiry is checked on the real one.
		const realNow = Date.now.bind(Date);
		jest.spyOn(Date, "now").mockImplementation(() => realNow() + clockOffset);
	});
	afterAll(async () => {
		jest.restoreAllMocks();
		await server?.stop();
		await issuer?.stop();
	});

	test("nothing is fetched before the first OIDC token; then the discovery document and the JWKS once", async () => {
		expect((await get(flaskToken())).status).toBe(200);
		expect(await fetches()).toEqual({ discovery: 0, jwks: 0 });
		const token = await issuer.token("rotating");
		expect((await get(token)).status).toBe(200);
		expect((await get(token)).status).toBe(200);
		expect(await fetches()).toEqual({ discovery: 1, jwks: 1 });
	});

	test("tokens with made-up kids: no refetch within the cooldown, one after it, however many", async () => {
		const storm = async () => {
			const tokens = await Promise.all(Array.from({ length: 40 }, () => forged(issuer, randomBytes(8).toString("hex"))));
			const statuses = await Promise.all(tokens.map(async t => (await get(t)).status));
			for (const t of tokens.slice(0, 10)) statuses.push((await get(t)).status);
			expect(new Set(statuses)).toEqual(new Set([401]));
		};
		await storm();
		expect(await fetches()).toEqual({ discovery: 1, jwks: 1 });
		clockOffset += JWKS_COOLDOWN_MS + 1000;
		await storm();
		expect(await fetches()).toEqual({ discovery: 1, jwks: 2 });
	});

	test("a rotated key verifies once the cooldown has passed; a retired one stops when the key cache is refreshed", async () => {
		const before = await issuer.token("rotating");
		const oldKid = decodeProtectedHeader(before).kid!;
		const newKid = await issuer.rotate("ES256");
		const after = await issuer.token("rotating");
		expect(decodeProtectedHeader(after).kid).toBe(newKid);

		// The JWKS was fetched less than a cooldown ago: the new kid is not asked for yet.
		expect((await get(after)).body.error?.message).toBe("Token signing key not known");
		expect((await fetches()).jwks).toBe(2);
		clockOffset += JWKS_COOLDOWN_MS + 1000;
		expect((await get(after)).status).toBe(200);
		expect((await get(before)).status).toBe(200);
		expect(await fetches()).toEqual({ discovery: 1, jwks: 3 });

		// Retired: the old key stays in jose's cache until it is refetched (JWKS_MAX_AGE_MS), then it is gone.
		await issuer.retire(oldKid);
		expect((await get(before)).status).toBe(200);
		clockOffset += JWKS_MAX_AGE_MS + 1000;
		const refused = await get(before);
		expect(refused.status).toBe(401);
		expect(refused.body.error.message).toBe("Token signing key not known");
		expect((await get(after)).status).toBe(200);
		expect(await fetches()).toEqual({ discovery: 1, jwks: 4 });
	});
});

describe("an unreachable issuer", () => {
	test("its tokens are refused with 401 (not 500), the failure logged once per interval, discovery not retried at once", async () => {
		const issuer = await startIssuer({ audience: AUDIENCE, rolesClaim: ROLES_CLAIM, clients: [{ client_id: "reporting", roles: ["viewer"], alg: "RS256" }] });
		const token = await issuer.token("reporting");
		await issuer.stop();

		const warnings: object[] = [];
		const verifier = createTokenVerifier({ jwtSecret: TEST_SECRETS.JWT_SECRET, oidc: { issuer: issuer.url, audience: AUDIENCE, rolesClaim: ROLES_CLAIM }, logger: { warn: fields => warnings.push(fields) } });
		await expect(verifier.verify(token)).rejects.toEqual(new TokenError("Token issuer unavailable"));
		await expect(verifier.verify(token)).rejects.toEqual(new TokenError("Token issuer unavailable"));
		expect(warnings).toEqual([expect.objectContaining({ issuer: issuer.url, err: expect.any(String) })]);
		// HS256 tokens do not depend on the issuer.
		expect((await verifier.verify(flaskToken())).principal).toEqual({ sub: "42", roles: ["viewer"] });

		const server = await startServer({ OIDC_ISSUER: issuer.url, OIDC_AUDIENCE: AUDIENCE, OIDC_ROLES_CLAIM: ROLES_CLAIM }, ["api", "agents"]);
		try {
			const res = await request(server.url, "GET", "/api/v1/agents", { token });
			expect(res.status).toBe(401);
			expect(res.body).toEqual({ error: { code: "UNAUTHORIZED", message: "Token issuer unavailable" } });
		} finally {
			await server.stop();
		}
	});

	test("an issuer that answers slowly is given up on after the timeout", async () => {
		const port = await freePort();
		// Accepts connections and never answers.
		const silent = net.createServer(() => undefined).listen(port, "127.0.0.1");
		try {
			const verifier = createTokenVerifier({ oidc: { issuer: `http://127.0.0.1:${port}`, audience: AUDIENCE, rolesClaim: ROLES_CLAIM } });
			const token = resigned(flaskToken({ iss: `http://127.0.0.1:${port}`, aud: AUDIENCE }), { alg: "RS256", kid: "k" }, "unused");
			const started = Date.now();
			await expect(verifier.verify(token)).rejects.toEqual(new TokenError("Token issuer unavailable"));
			expect(Date.now() - started).toBeLessThan(8000);
		} finally {
			silent.close();
		}
	}, 15_000);
});

describeWith(NATS)("over the transporter: a call with an OIDC token from another trusted node", () => {
	let issuer: Issuer;
	let core: TestServer;
	let caller: ServiceBroker;

	beforeAll(async () => {
		issuer = await startIssuer({ audience: AUDIENCE, rolesClaim: ROLES_CLAIM, clients: CLIENTS });
		const env = { ...oidcEnv(issuer), TRANSPORTER: `nats://${NATS.host}:${NATS.port}`, NAMESPACE: `oidc-${randomBytes(4).toString("hex")}` };
		core = await startServer({ ...env, NODE_ID: "oidc-core" }, ["agents"]);
		caller = createTestBroker(testConfig({ ...env, NODE_ID: "oidc-caller" }));
		await caller.start();
		await caller.waitForServices(["agents"], 10_000);
	}, 30_000);
	afterAll(async () => {
		await caller?.stop();
		await core?.stop();
		await issuer?.stop();
	});

	test("is verified on the node that runs the action, with its roles", async () => {
		const viewer = await issuer.token("reporting");
		const operator = await issuer.token("deployer");
		const call = (action: string, params: object, token: string) => caller.call(action, params, { meta: { token } });
		const agent = { name: `oidc-agent-${randomUUID().slice(0, 8)}`, type: "worker", capabilities: ["oidc-check"] };

		await expect(call("agents.list", {}, viewer)).resolves.toMatchObject({ total: expect.any(Number) });
		await expect(call("agents.register", agent, viewer)).rejects.toMatchObject({ code: 403, type: "FORBIDDEN" });
		await expect(call("agents.register", agent, operator)).resolves.toMatchObject({ name: agent.name });
		await expect(call("agents.list", {}, await issuer.token("reporting", { resource: "urn:other-api" }))).rejects.toMatchObject({ code: 401, message: "Token audience not accepted" });
		await expect(call("agents.list", {}, await forged(issuer, "made-up"))).rejects.toMatchObject({ code: 401, message: "Token signing key not known" });
		// The core node fetched the issuer's keys itself (the caller verified nothing).
		expect((await issuer.requests())["/.well-known/openid-configuration"]).toBe(2);
	});
});
