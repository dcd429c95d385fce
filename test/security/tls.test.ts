/**
 * TLS at the gateway and outbound, over real sockets with certificates made by openssl here:
 * HTTPS REST, socket.io and /ws over wss, client certificates (TLS_CLIENT_CA_FILE), HTTPS agents
 * trusted through OUTBOUND_CA_FILE, and SIGHUP on a real node process (new handshakes get the new
 * certificate, open connections keep going). The transporter, Redis and PostgreSQL: tls-backends.test.ts.
 */
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { io as ioClient, type Socket as IoSocket } from "socket.io-client";
import WebSocket from "ws";
import { ConfigError } from "../../src/platform/config";
import { mintToken } from "../../src/platform/tokens";
import { transporterOptions } from "../../src/platform/transporter";
import { EgressPolicy, failureDetail } from "../../src/runtime/egress";
import type { ClusterMessage, TaskDelivery } from "../../src/types";
import { createTestBroker, tempDir, testConfig, TEST_SECRETS } from "../support/broker";
import { createTestPki, httpOverTls, peerSerial, tlsFailure, tlsRequest, type ClientTls, type TestPki } from "../support/certs";
import { ensureBuilt, freePort, startNode, type ManagedProcess } from "../support/cluster";
import { waitFor } from "../support/http";
import { startHttpAgent, type HttpAgent } from "../support/http-agent";
import { startServer, type TestServer } from "../support/server";
import { describeWith, OPENSSL } from "../support/services";

jest.setTimeout(60_000);

const gatewayEnv = (pki: TestPki, extra: Record<string, string> = {}) => ({ TLS_CERT_FILE: pki.server.certFile, TLS_KEY_FILE: pki.server.keyFile, ...extra });
const portOf = (url: string) => Number(new URL(url).port);
// The gateways send their own certificate, not the chain: a client without the CA cannot link it to any root.
const UNTRUSTED = "UNABLE_TO_VERIFY_LEAF_SIGNATURE";

function connectIo(url: string, token: string, client: ClientTls): Promise<{ socket: IoSocket; received: ClusterMessage[] }> {
	const socket = ioClient(url, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false, ...client });
	const received: ClusterMessage[] = [];
	socket.on("agent_update", (m: ClusterMessage) => received.push(m));
	return new Promise((resolve, reject) => {
		socket.once("connect", () => resolve({ socket, received }));
		socket.once("connect_error", err => (socket.close(), reject(err)));
	});
}

/** A /ws client over wss that has sent its token and got auth_ok; keeps every message. */
async function connectWs(url: string, token: string, client: ClientTls): Promise<{ ws: WebSocket; messages: Record<string, unknown>[] }> {
	const ws = new WebSocket(`${url.replace(/^https/, "wss")}/ws`, { ...client });
	const messages: Record<string, unknown>[] = [];
	ws.on("message", data => messages.push(JSON.parse(data.toString())));
	await new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)));
	ws.send(JSON.stringify({ type: "auth", token }));
	await waitFor(async () => messages.some(m => m.type === "auth_ok"), 5000);
	return { ws, messages };
}

const registerAgent = (url: string, client: ClientTls, name: string, endpoints?: Record<string, string>) =>
	tlsRequest(`${url}/api/v1/agents/register`, client, {
		method: "POST",
		headers: { "X-API-Key": TEST_SECRETS.API_KEY },
		body: { name, type: "worker", capabilities: ["task-execution"], ...(endpoints ? { endpoints } : {}) }
	});

describeWith(OPENSSL)("TLS", () => {
	let pki: TestPki;
	beforeAll(() => {
		pki = createTestPki();
	});

	describe("the gateway over HTTPS", () => {
		let server: TestServer;
		let trusting: ClientTls;
		const closers: Array<() => void> = [];
		beforeAll(async () => {
			server = await startServer(gatewayEnv(pki), ["api", "agents", "realtime"]);
			trusting = { ca: pki.ca.cert };
		});
		afterEach(() => closers.splice(0).forEach(close => close()));
		afterAll(() => server.stop());

		test("REST answers over HTTPS to a client trusting the CA; without the CA the handshake fails; plain HTTP gets nothing", async () => {
			expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
			expect((await tlsRequest(`${server.url}/health`, trusting)).status).toBe(200);
			const agents = await tlsRequest(`${server.url}/api/v1/agents`, trusting, { token: server.token(["viewer"]) });
			expect(agents).toMatchObject({ status: 200, body: { agents: expect.any(Array) } });
			expect(await tlsFailure(`${server.url}/health`, {})).toBe(UNTRUSTED);
			expect(await tlsFailure(`${server.url}/health`, { ca: pki.otherCa.cert })).toBe(UNTRUSTED);
			const plain = await fetch(server.url.replace("https:", "http:") + "/health").then(res => `status ${res.status}`, err => (err as Error).message);
			expect(plain).not.toBe("status 200");
		});

		test("socket.io over wss and /ws over wss authenticate and receive an event", async () => {
			const viewer = server.token(["viewer"], "tls-viewer");
			const io = await connectIo(server.url, viewer, trusting);
			closers.push(() => io.socket.close());
			const ws = await connectWs(server.url, viewer, trusting);
			closers.push(() => ws.ws.close());
			const agent = await registerAgent(server.url, trusting, "tls-events");
			expect(agent.status).toBe(201);
			const update = { type: "agent_update", agent_id: agent.body.id, status: "active" };
			await waitFor(async () => io.received.length > 0 && ws.messages.some(m => m.type === "agent_update"), 5000);
			expect(io.received[0]).toMatchObject(update);
			expect(ws.messages.find(m => m.type === "agent_update")).toMatchObject(update);
			// And without the CA neither gets through the handshake.
			await expect(connectIo(server.url, viewer, {})).rejects.toThrow();
			await expect(connectWs(server.url, viewer, {})).rejects.toThrow("unable to verify the first certificate");
		});

		test("the key stays on this node: the service's settings sent to other nodes leave `https` out", () => {
			const info = JSON.stringify(server.broker.getLocalNodeInfo());
			expect(info).not.toContain("PRIVATE KEY");
			expect(info).not.toContain(pki.server.key.split("\n")[1]);
			const api = server.broker.getLocalNodeInfo().services.find(s => s.name === "api");
			expect(api?.settings).toBeDefined();
			expect(api?.settings).not.toHaveProperty("https");
		});

		test("a gateway whose certificate cannot be read, or whose key is not the certificate's, does not start", async () => {
			await expect(startServer({ TLS_CERT_FILE: "/nonexistent/cert.pem", TLS_KEY_FILE: pki.server.keyFile }, ["api"])).rejects.toThrow(/^TLS_CERT_FILE: cannot be read/);
			await expect(startServer({ TLS_CERT_FILE: pki.server.certFile, TLS_KEY_FILE: pki.client.keyFile }, ["api"])).rejects.toThrow(/^TLS_CERT_FILE: with TLS_KEY_FILE: .*key values mismatch/);
		});
	});

	describe("client certificates (TLS_CLIENT_CA_FILE)", () => {
		let server: TestServer;
		beforeAll(async () => {
			server = await startServer(gatewayEnv(pki, { TLS_CLIENT_CA_FILE: pki.ca.certFile }), ["api"]);
		});
		afterAll(() => server.stop());

		test("a certificate signed by that CA gets through; none, or one from another CA, is refused at the handshake", async () => {
			const base = { ca: pki.ca.cert };
			const port = portOf(server.url);
			expect((await tlsRequest(`${server.url}/health`, { ...base, cert: pki.client.cert, key: pki.client.key })).status).toBe(200);
			expect(await httpOverTls(port, { ...base, cert: pki.client.cert, key: pki.client.key })).toMatch(/^HTTP\/1\.1 200 /);
			// No certificate: OpenSSL's alert ends the handshake. One from another CA: node checks it as the
			// handshake completes and drops the connection then. Either way no HTTP request is ever read.
			expect(await httpOverTls(port, base)).toBe("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
			expect(await httpOverTls(port, { ...base, cert: pki.otherClient.cert, key: pki.otherClient.key })).toBe("closed without an answer");
			expect(await tlsFailure(`${server.url}/health`, base)).toBe("UND_ERR_SOCKET");
		});
	});

	describe("the transporter's TLS settings", () => {
		test("transporter TLS files apply to NATS and to TLS URLs of the others (amqps://, rediss://); with a plain amqp:// or redis:// they are refused; unreadable or mismatched files name their variable", () => {
			const load = (env: Record<string, string>) => () => transporterOptions(testConfig(env));
			const error = (fn: () => unknown) => {
				try {
					fn();
				} catch (err) {
					return err as ConfigError;
				}
				throw new Error("no error");
			};
			const amqp = error(load({ TRANSPORTER: "amqp://127.0.0.1", TRANSPORTER_TLS_CA_FILE: pki.ca.certFile }));
			expect(amqp).toBeInstanceOf(ConfigError);
			expect(amqp.variable).toBe("TRANSPORTER_TLS_CA_FILE");
			expect(amqp.message).toMatch(/needs TLS in TRANSPORTER: amqp:\/\/ is plain TCP .*use amqps:\/\//);
			expect(error(load({ TRANSPORTER: "redis://127.0.0.1", TRANSPORTER_TLS_CERT_FILE: pki.client.certFile, TRANSPORTER_TLS_KEY_FILE: pki.client.keyFile })).variable).toBe("TRANSPORTER_TLS_CERT_FILE");
			expect(error(load({ TRANSPORTER: "nats://127.0.0.1:4222", TRANSPORTER_TLS_CA_FILE: "/nonexistent/ca.pem" })).message).toMatch(/^TRANSPORTER_TLS_CA_FILE: cannot be read/);
			const mismatched = error(load({ TRANSPORTER: "nats://127.0.0.1:4222", TRANSPORTER_TLS_CERT_FILE: pki.client.certFile, TRANSPORTER_TLS_KEY_FILE: pki.server.keyFile }));
			expect(mismatched.message).toMatch(/^TRANSPORTER_TLS_CERT_FILE: with TRANSPORTER_TLS_KEY_FILE: .*key values mismatch/);
			// Given by name: nats.js reads them at every (re)connect.
			expect(load({ TRANSPORTER: "nats://127.0.0.1:4222", TRANSPORTER_TLS_CA_FILE: pki.ca.certFile, TRANSPORTER_TLS_CERT_FILE: pki.client.certFile, TRANSPORTER_TLS_KEY_FILE: pki.client.keyFile })()).toEqual({
				type: "NATS",
				options: { servers: ["nats://127.0.0.1:4222"], tls: { caFile: pki.ca.certFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile } }
			});
		});
	});

	describe("HTTPS agents and OUTBOUND_CA_FILE", () => {
		let agent: HttpAgent;
		const servers: TestServer[] = [];
		beforeAll(async () => {
			agent = await startHttpAgent({ tls: { cert: pki.server.cert, key: pki.server.key } });
		});
		afterAll(async () => {
			for (const s of servers) await s.stop();
			await agent.close();
		});

		/** A development server (loopback allowed) with an HTTPS gateway; one HTTPS agent registered; one task submitted. */
		async function deliverOneTask(env: Record<string, string>, name: string) {
			const server = await startServer(gatewayEnv(pki, { HEALTH_CHECK_INTERVAL_MS: "60000", ...env }));
			servers.push(server);
			const trusting = { ca: pki.ca.cert };
			const registered = await registerAgent(server.url, trusting, name, { task: agent.endpoints.task });
			expect(registered.status).toBe(201);
			const created = await tlsRequest(`${server.url}/api/v1/tasks`, trusting, {
				method: "POST",
				token: server.token(["operator"]),
				body: { type: "task-execution", payload: { n: 1 }, retry_count: 0 }
			});
			expect(created.status).toBe(201);
			const viewer = server.token(["viewer"]);
			return waitFor(async () => {
				const task = (await tlsRequest(`${server.url}/api/v1/tasks/${created.body.task_id}`, trusting, { token: viewer })).body;
				return ["completed", "failed"].includes(task.status) ? { server, task } : undefined;
			}, 20_000);
		}

		test("with the CA in OUTBOUND_CA_FILE the delivery arrives, and the agent calls back over the gateway's HTTPS", async () => {
			let callbackBase = "";
			agent.script = (d: TaskDelivery) => {
				callbackBase = d.callbacks.complete;
				void tlsRequest(d.callbacks.complete, { ca: pki.ca.cert }, { method: "POST", token: d.callback_token, body: { result: { over: "tls" } } });
			};
			const before = agent.deliveries.length;
			const { server, task } = await deliverOneTask({ OUTBOUND_CA_FILE: pki.ca.certFile }, "https-agent");
			expect(task).toMatchObject({ status: "completed", result: { over: "tls" } });
			expect(agent.deliveries.length).toBe(before + 1);
			expect(callbackBase).toBe(`${server.url}/api/v1/tasks/${task.task_id}/complete`);
			expect(callbackBase).toMatch(/^https:\/\/127\.0\.0\.1:/);
		});

		test("without it the agent's certificate is not trusted: the delivery fails and the agent receives nothing", async () => {
			const before = agent.deliveries.length;
			const { task } = await deliverOneTask({}, "https-agent-untrusted");
			expect(task).toMatchObject({ status: "failed", error: "Delivery to the agent's task endpoint failed: it could not be reached" });
			expect(agent.deliveries.length).toBe(before);
		});

		test("OUTBOUND_CA_FILE must hold a PEM certificate", () => {
			expect(() => new EgressPolicy({ deny: [], allow: [] }, { caFile: pki.server.keyFile })).toThrow("OUTBOUND_CA_FILE: holds no PEM certificate");
		});
	});

	describe("SIGHUP", () => {
		test("one SIGHUP listener however many nodes run in the process, and none once they have stopped; none without TLS files", async () => {
			const before = process.listenerCount("SIGHUP");
			const brokers = [gatewayEnv(pki), { OUTBOUND_CA_FILE: pki.ca.certFile }, {}].map(env => createTestBroker(testConfig(env)));
			await Promise.all(brokers.map(b => b.start()));
			expect(process.listenerCount("SIGHUP")).toBe(before + 1);
			await brokers[0].stop();
			expect(process.listenerCount("SIGHUP")).toBe(before + 1);
			await Promise.all(brokers.slice(1).map(b => b.stop()));
			expect(process.listenerCount("SIGHUP")).toBe(before);
		});

		test("reloadCa (what SIGHUP calls) trusts what the file holds now; a file it cannot read keeps the previous CA", async () => {
			const agent = await startHttpAgent({ tls: { cert: pki.server.cert, key: pki.server.key } });
			const dir = tempDir("mcp-outbound-ca-");
			const caFile = path.join(dir, "ca.pem");
			fs.writeFileSync(caFile, pki.otherCa.cert);
			const policy = new EgressPolicy({ deny: [], allow: [] }, { caFile });
			try {
				const health = agent.endpoints.health;
				expect(failureDetail(await policy.fetch(health).catch(err => err))).toBe(UNTRUSTED);
				fs.writeFileSync(caFile, pki.ca.cert);
				policy.reloadCa();
				expect(await policy.fetch(health)).toEqual({ ok: true, status: 200 });
				fs.rmSync(caFile);
				expect(() => policy.reloadCa()).toThrow(ConfigError);
				await policy.close();
				expect(await policy.fetch(health)).toEqual({ ok: true, status: 200 });
			} finally {
				await policy.close();
				await agent.close();
			}
		});

		describe("on a running node", () => {
			let node: ManagedProcess;
			let port: number;
			let certFile: string;
			let keyFile: string;
			let url: string;
			const trusting = () => ({ ca: pki.ca.cert });

			beforeAll(async () => {
				ensureBuilt();
				const dir = tempDir("mcp-tls-reload-");
				[certFile, keyFile] = [path.join(dir, "gateway.pem"), path.join(dir, "gateway.key")];
				fs.copyFileSync(pki.server.certFile, certFile);
				fs.copyFileSync(pki.server.keyFile, keyFile);
				port = await freePort();
				url = `https://127.0.0.1:${port}`;
				node = startNode("tls-reload", {
					...TEST_SECRETS,
					DATA_DIR: path.join(dir, "data"),
					SERVER_PORT: String(port),
					LOG_LEVEL: "info",
					TLS_CERT_FILE: certFile,
					TLS_KEY_FILE: keyFile,
					OUTBOUND_CA_FILE: pki.ca.certFile,
					HEALTH_CHECK_INTERVAL_MS: "60000"
				});
				await waitFor(async () => (await tlsRequest(`${url}/health`, trusting()).catch(() => ({ status: 0 }))).status === 200, 30_000);
			}, 60_000);
			afterAll(() => node?.kill());

			/** A GET over a keep-alive agent: its status, whether it reused the socket, and the serial that socket saw. */
			function keepAliveGet(agent: https.Agent): Promise<{ status: number; reused: boolean; serial: string }> {
				return new Promise((resolve, reject) => {
					const req = https.get(`${url}/health`, { agent }, res => {
						const serial = (res.socket as import("node:tls").TLSSocket).getPeerCertificate().serialNumber;
						res.resume();
						res.once("end", () => resolve({ status: res.statusCode!, reused: req.reusedSocket, serial }));
					});
					req.once("error", reject);
				});
			}

			test("a new certificate: new handshakes see it, an open keep-alive connection and an open /ws keep working", async () => {
				const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.cert });
				const token = mintToken(TEST_SECRETS.JWT_SECRET, { sub: "reload-viewer", roles: ["viewer"], expiresInSec: 600 });
				const ws = await connectWs(url, token, trusting());
				try {
					expect(await peerSerial(port, trusting())).toBe(pki.server.serial);
					const renewed = pki.issueServer(0x1234);
					expect(renewed.serial).toBe("1234");
					fs.writeFileSync(certFile, renewed.cert);
					fs.writeFileSync(keyFile, renewed.key);
					expect(await keepAliveGet(agent)).toEqual({ status: 200, reused: false, serial: pki.server.serial });

					node.process.kill("SIGHUP");
					await waitFor(async () => (await peerSerial(port, trusting())) === "1234", 10_000);
					// The connection made before the reload goes on with the certificate it was made with.
					expect(await keepAliveGet(agent)).toEqual({ status: 200, reused: true, serial: pki.server.serial });
					const registered = await registerAgent(url, trusting(), "after-reload");
					expect(registered.status).toBe(201);
					await waitFor(async () => ws.messages.some(m => m.type === "agent_update" && m.agent_id === registered.body.id), 5000);
					expect(node.process.exitCode).toBeNull();
					const lines = node.output.join("");
					expect(lines).toMatch(/"variable":"TLS_CERT_FILE".*SIGHUP: certificates re-read/);
					expect(lines).toMatch(/"variable":"OUTBOUND_CA_FILE".*SIGHUP: certificates re-read/);
				} finally {
					ws.ws.close();
					agent.destroy();
				}
			});

			test("a broken file on SIGHUP: the node says so and keeps serving the certificate it had", async () => {
				fs.writeFileSync(keyFile, "not a key");
				node.process.kill("SIGHUP");
				await waitFor(async () => /"variable":"TLS_CERT_FILE".*certificates not re-read/.test(node.output.join("")), 10_000);
				expect(await peerSerial(port, trusting())).toBe("1234");
				expect((await tlsRequest(`${url}/health`, trusting())).status).toBe(200);
			});
		});
	});
});
