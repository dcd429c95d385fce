/**
 * TLS to the backing services, against real servers with certificates made by openssl here:
 * a private nats-server with --tls (and --tlsverify for mutual TLS), a private redis-server on a
 * TLS port (rediss://, the CA through NODE_EXTRA_CA_CERTS), and PostgreSQL's sslmode as pg reads it
 * from DATABASE_URL (the machine's server has no TLS: a TLS-terminating proxy in front of it).
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import type { ServiceBroker } from "moleculer";
import { COLLECTIONS } from "../../src/storage/collections";
import { postgresStorage, sqlModelDefinition } from "../../src/storage/postgres";
import type { DbAdapter } from "../../src/storage/storage-adapter";
import { tempDir, testConfig, TEST_SECRETS } from "../support/broker";
import { createTestPki, type Issued, type TestPki } from "../support/certs";
import { ensureBuilt, freePort, startAgentNode, startNatsServer, startNode, startRedisServer, type ManagedProcess } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS_SERVER, OPENSSL, POSTGRES, REDIS_SERVER } from "../support/services";

jest.setTimeout(60_000);

let pki: TestPki;
beforeAll(() => {
	ensureBuilt();
	pki = createTestPki();
});

const processes: ManagedProcess[] = [];
const track = (p: ManagedProcess) => (processes.push(p), p);
afterAll(async () => {
	for (const p of processes) await p.kill();
});

const output = (p: ManagedProcess) => p.output.join("");
const clientCert = (c: Issued) => ({ TRANSPORTER_TLS_CERT_FILE: c.certFile, TRANSPORTER_TLS_KEY_FILE: c.keyFile });

/**
 * A gateway-only node that should not get onto the bus. Once it has tried: it is neither connected
 * nor serving (the broker starts its services only once connected), and the answer is why, in the
 * words of both ends: the node's connect error (Moleculer logs it at debug) and the NATS server's log.
 */
async function refusedNode(name: string, env: Record<string, string>, nats: ManagedProcess): Promise<string> {
	const port = await freePort();
	const natsSaid = nats.output.length;
	const node = track(startNode(name, { ...env, SERVICES: "api", SERVER_PORT: String(port), DATA_DIR: tempDir(), LOG_LEVEL: "debug" }));
	const natsLines = () => nats.output.slice(natsSaid).join("");
	// Under TLS 1.3 a client certificate is refused after the client's side of the handshake: the server says so, the client just waits.
	await waitFor(async () => /Connection is failed/.test(output(node)) || /TLS handshake error/.test(natsLines()), 20_000);
	await new Promise(resolve => setTimeout(resolve, 1000));
	expect(output(node)).not.toContain("NATS client is connected");
	const health = await request(`http://127.0.0.1:${port}`, "GET", "/health").then(r => r.status, () => 0);
	expect(health).toBe(0);
	await node.kill();
	const lines = output(node).split("\n");
	const failed = lines.findIndex(line => line.includes("Connection is failed"));
	return [...(failed >= 0 ? lines.slice(failed, failed + 2) : []), natsLines()].join("\n");
}

interface Refusal {
	why: string;
	env: () => Record<string, string>;
	says: RegExp;
}

const NATS_MODES: Array<{ name: string; serverArgs: () => string[]; clientEnv: () => Record<string, string>; refusals: Refusal[] }> = [
	{
		name: "TLS (--tls)",
		serverArgs: () => ["--tls", "--tlscert", pki.server.certFile, "--tlskey", pki.server.keyFile],
		clientEnv: () => ({ TRANSPORTER_TLS_CA_FILE: pki.ca.certFile }),
		refusals: [
			{ why: "without TRANSPORTER_TLS_CA_FILE", env: () => ({}), says: /unable to verify the first certificate/ },
			{ why: "trusting another CA", env: () => ({ TRANSPORTER_TLS_CA_FILE: pki.otherCa.certFile }), says: /unable to verify the first certificate/ }
		]
	},
	{
		name: "mutual TLS (--tlsverify)",
		serverArgs: () => ["--tlsverify", "--tlscert", pki.server.certFile, "--tlskey", pki.server.keyFile, "--tlscacert", pki.ca.certFile],
		clientEnv: () => ({ TRANSPORTER_TLS_CA_FILE: pki.ca.certFile, ...clientCert(pki.client) }),
		refusals: [
			{ why: "without a client certificate", env: () => ({ TRANSPORTER_TLS_CA_FILE: pki.ca.certFile }), says: /TLS handshake error: tls: client didn't provide a certificate/ },
			{ why: "with a client certificate from another CA", env: () => ({ TRANSPORTER_TLS_CA_FILE: pki.ca.certFile, ...clientCert(pki.otherClient) }), says: /TLS handshake error: .*certificate signed by unknown authority/ }
		]
	}
];

for (const mode of NATS_MODES)
	describeWith(OPENSSL, NATS_SERVER)(`NATS over ${mode.name}`, () => {
		let nats: Awaited<ReturnType<typeof startNatsServer>>;
		let server: TestServer;
		let env: Record<string, string>;
		let dataRoot: string;

		beforeAll(async () => {
			nats = await startNatsServer(undefined, mode.serverArgs());
			track(nats);
			dataRoot = path.join(tempDir("tls-agent-root-"), "agent-data");
			env = {
				...TEST_SECRETS,
				TRANSPORTER: nats.url,
				...mode.clientEnv(),
				NAMESPACE: `tls-${randomBytes(4).toString("hex")}`,
				NODE_HEARTBEAT_INTERVAL_SEC: "1",
				NODE_HEARTBEAT_TIMEOUT_SEC: "3",
				AGENT_DATA_ROOT: dataRoot
			};
			server = await startServer(env);
		}, 30_000);
		afterAll(() => server?.stop());

		test("a server node joins and an agent node over the same TLS bus runs a task submitted over REST", async () => {
			const ready = await request(server.url, "GET", "/ready");
			expect(ready.body.checks.transporter).toBe("ok");
			const agentNode = track(startAgentNode(`tls-agent-${randomBytes(3).toString("hex")}`, { ...env, AGENT_NAME: "tls-agent", AGENT_CAPABILITIES: "data-ingestion" }));
			const viewer = client(server.url, server.token(["viewer"]));
			const agent = await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { name: string; status: string }) => a.name === "tls-agent" && a.status === "active"), 20_000).catch(err => {
				throw new Error(`${(err as Error).message}; agent node said: ${output(agentNode)}`);
			});
			const created = await client(server.url, server.token(["operator"])).post("/api/v1/tasks", {
				type: "data-ingestion",
				payload: { data_source: `file://${dataRoot}/sample.csv`, parameters: { format: "csv", delimiter: "," } }
			});
			expect(created.status).toBe(201);
			const done = await waitFor(async () => {
				const t = (await viewer.get(`/api/v1/tasks/${created.body.task_id}`)).body;
				return ["completed", "failed"].includes(t.status) ? t : undefined;
			}, 20_000);
			expect(done).toMatchObject({ status: "completed", assigned_agent: agent.id });
			expect(done.result.count).toBe(30);
		});

		test("a gateway node as npm start runs it (moleculer-runner) joins too: its REST calls cross the TLS bus", async () => {
			const port = await freePort();
			const gateway = track(startNode(`tls-gateway-${randomBytes(3).toString("hex")}`, { ...env, SERVICES: "api", SERVER_PORT: String(port), DATA_DIR: tempDir() }));
			const url = `http://127.0.0.1:${port}`;
			await waitFor(async () => (await request(url, "GET", "/ready").catch(() => null))?.status === 200, 30_000).catch(err => {
				throw new Error(`${(err as Error).message}; the node said: ${output(gateway)}`);
			});
			const agents = await client(url, server.token(["viewer"])).get("/api/v1/agents");
			expect(agents.status).toBe(200);
			expect(agents.body.agents.map((a: { name: string }) => a.name)).toContain("tls-agent");
		});

		for (const refusal of mode.refusals)
			test(`a node ${refusal.why} cannot connect`, async () => {
				const { TRANSPORTER_TLS_CA_FILE: _ca, TRANSPORTER_TLS_CERT_FILE: _cert, TRANSPORTER_TLS_KEY_FILE: _key, ...rest } = env;
				expect(await refusedNode(`tls-refused-${randomBytes(3).toString("hex")}`, { ...rest, ...refusal.env() }, nats)).toMatch(refusal.says);
			});
	});

describeWith(OPENSSL, NATS_SERVER)("NATS without TLS", () => {
	test("a node with TRANSPORTER_TLS_CA_FILE refuses a server that offers no TLS rather than going on in the clear", async () => {
		const nats = await startNatsServer();
		track(nats);
		const said = await refusedNode("tls-no-downgrade", { ...TEST_SECRETS, TRANSPORTER: nats.url, TRANSPORTER_TLS_CA_FILE: pki.ca.certFile }, nats);
		expect(said).toMatch(/"code":"SERVER_OPT_NA"/);
	});
});

describeWith(OPENSSL, REDIS_SERVER)("Redis over TLS (rediss://, the CA through NODE_EXTRA_CA_CERTS)", () => {
	let redis: Awaited<ReturnType<typeof startRedisServer>>;
	let env: Record<string, string>;
	const urls: string[] = [];

	async function gateway(name: string, extra: Record<string, string>): Promise<{ node: ManagedProcess; url: string }> {
		const port = await freePort();
		const node = track(startNode(name, { ...env, ...extra, SERVICES: "api", SERVER_PORT: String(port), DATA_DIR: tempDir() }));
		const url = `http://127.0.0.1:${port}`;
		await waitFor(async () => (await request(url, "GET", "/health").catch(() => ({ status: 0 }))).status === 200, 30_000);
		return { node, url };
	}

	beforeAll(async () => {
		redis = await startRedisServer(undefined, { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.ca.certFile });
		track(redis);
		expect(redis.url).toMatch(/^rediss:\/\//);
		env = { ...TEST_SECRETS, REDIS_URL: redis.url, NAMESPACE: `tls-redis-${randomBytes(4).toString("hex")}`, RATE_LIMIT_PER_MINUTE: "1000" };
		for (const name of ["redis-tls-a", "redis-tls-b"]) urls.push((await gateway(name, { NODE_EXTRA_CA_CERTS: pki.ca.certFile })).url);
	}, 60_000);

	test("two gateways share the rate limit through Redis over TLS", async () => {
		for (const url of urls) await waitFor(async () => (await request(url, "GET", "/ready")).body.checks?.redis === "ok", 10_000);
		// One window: the same counter goes down by one per request, whichever gateway answers.
		const counts = await waitFor(async () => {
			const answers = [];
			for (const url of [urls[0], urls[1], urls[0], urls[1]]) answers.push((await request(url, "GET", "/api/v1/agents")).headers);
			const resets = new Set(answers.map(h => h.get("x-ratelimit-reset")));
			return resets.size === 1 ? answers.map(h => Number(h.get("x-ratelimit-remaining"))) : undefined;
		}, 10_000);
		expect(counts.slice(1).map((n, i) => counts[i] - n)).toEqual([1, 1, 1]);
	});

	test("without the CA a gateway does not trust the Redis server: not ready, and limiting per node", async () => {
		const { node, url } = await gateway("redis-tls-untrusted", {});
		const ready = await request(url, "GET", "/ready");
		expect(ready.status).toBe(503);
		expect(ready.body.checks.redis).not.toBe("ok");
		// The probes are outside the rate limit: an API request is what asks the limiter, and finds Redis untrusted.
		await waitFor(async () => {
			await request(url, "GET", "/api/v1/agents");
			return /Redis unreachable: rate limiting per node/.test(output(node));
		}, 10_000);
	});
});

/** A TLS-terminating proxy in front of PostgreSQL: answers the SSLRequest with 'S', does the TLS handshake, then relays. */
async function startPgTlsProxy(cert: Issued, upstreamPort: number) {
	const stats = { handshakes: 0, refusedPlain: 0 };
	const sockets = new Set<net.Socket>();
	const terminator = tls.createServer({ cert: cert.cert, key: cert.key }, secure => {
		stats.handshakes++;
		const upstream = net.connect(upstreamPort, "127.0.0.1");
		sockets.add(upstream);
		secure.pipe(upstream).pipe(secure);
		secure.on("error", () => upstream.destroy());
		upstream.on("error", () => secure.destroy());
		secure.on("close", () => upstream.destroy());
	});
	terminator.on("tlsClientError", () => undefined);
	const SSL_REQUEST = 80877103;
	const proxy = net.createServer(socket => {
		sockets.add(socket);
		socket.on("error", () => undefined);
		socket.once("data", first => {
			if (first.length !== 8 || first.readInt32BE(4) !== SSL_REQUEST) {
				stats.refusedPlain++;
				return void socket.destroy();
			}
			socket.write("S", () => terminator.emit("connection", socket));
		});
	});
	await new Promise<void>(resolve => proxy.listen(0, "127.0.0.1", resolve));
	return {
		port: (proxy.address() as net.AddressInfo).port,
		stats,
		close: () => {
			for (const s of sockets) s.destroy();
			return new Promise<void>(resolve => proxy.close(() => resolve()));
		}
	};
}

describeWith(OPENSSL, POSTGRES)("PostgreSQL sslmode in DATABASE_URL", () => {
	let db: TestDatabase;
	let proxy: Awaited<ReturnType<typeof startPgTlsProxy>>;
	beforeAll(async () => {
		db = await createTestDatabase();
		proxy = await startPgTlsProxy(pki.server, new URL(db.url).port ? Number(new URL(db.url).port) : 5432);
	});
	afterAll(async () => {
		await proxy?.close();
		await db?.drop();
	});

	/** The storage adapter exactly as a node makes it from DATABASE_URL, connected once: "connected" or the driver's error. */
	async function connect(url: string): Promise<string> {
		const spec = COLLECTIONS.agents;
		const adapter = postgresStorage.createDbAdapter(testConfig({ DATABASE_URL: url }), spec) as DbAdapter;
		const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
		adapter.init({} as ServiceBroker, { schema: { model: sqlModelDefinition(spec) }, logger: quiet });
		try {
			await adapter.connect();
			return "connected";
		} catch (err) {
			return (err as Error).message;
		} finally {
			await adapter.disconnect().catch(() => undefined);
		}
	}
	const viaProxy = (query: string) => {
		const url = new URL(db.url);
		url.port = String(proxy.port);
		return `${url.toString()}?${query}`;
	};

	test("sslmode=require and verify-full reach pg through Sequelize: the machine's server, without TLS, answers pg's own refusal", async () => {
		expect(await connect(db.url)).toBe("connected");
		expect(await connect(`${db.url}?sslmode=disable`)).toBe("connected");
		// Plain require is verify-full to pg 8 (it warns so); uselibpqcompat=true gives libpq's meaning (encrypt, do not verify).
		expect(await connect(`${db.url}?sslmode=require`)).toBe("The server does not support SSL connections");
		expect(await connect(`${db.url}?uselibpqcompat=true&sslmode=require`)).toBe("The server does not support SSL connections");
		expect(await connect(`${db.url}?sslmode=verify-full`)).toBe("The server does not support SSL connections");
	});

	test("verify-full with sslrootcert through a TLS proxy: a whole server runs on it; without the CA the proxy's certificate is refused", async () => {
		const secure = viaProxy(`sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.ca.certFile)}`);
		expect(await connect(secure)).toBe("connected");
		expect(await connect(viaProxy("sslmode=verify-full"))).toBe("unable to verify the first certificate");
		expect(await connect(viaProxy(`sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.otherCa.certFile)}`))).toBe("unable to verify the first certificate");
		expect(await connect(viaProxy("sslmode=disable"))).not.toBe("connected");

		const before = proxy.stats.handshakes;
		const server = await startServer({ DATABASE_URL: secure });
		try {
			const operator = client(server.url, server.token(["operator"]));
			const created = await operator.post("/api/v1/tasks", { type: "processing", payload: { over: "tls" } });
			expect(created.status).toBe(201);
			expect((await operator.get(`/api/v1/tasks/${created.body.task_id}`)).body).toMatchObject({ payload: { over: "tls" } });
		} finally {
			await server.stop();
		}
		expect(proxy.stats.handshakes).toBeGreaterThan(before);
		expect(proxy.stats.refusedPlain).toBe(1);
	});
});
