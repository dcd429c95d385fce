/**
 * TLS to the backing services, against real servers with certificates made by openssl here:
 * a private nats-server with --tls (and --tlsverify for mutual TLS).
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { createTestPki, type Issued, type TestPki } from "../support/certs";
import { ensureBuilt, freePort, startAgentNode, startNatsServer, startNode, type ManagedProcess } from "../support/cluster";
import { client, request, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS_SERVER, OPENSSL } from "../support/services";

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
