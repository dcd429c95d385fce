/**
 * NATS credentials keep other processes off the bus: private nats-server instances that demand a
 * token, a user and password, an operator's JWT creds or a user nkey. A server node given the
 * credentials joins (its REST answers, and an agent node with the same credentials registers
 * through it over that NATS); a Moleculer broker without them is refused at connect.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { startAgentNode } from "../support/agent-node";
import { tempDir } from "../support/broker";
import { startNatsServer, type ManagedProcess, type NatsAuth } from "../support/cluster";
import { client, waitFor } from "../support/http";
import { nkeyUser, operatorSetup } from "../support/nats-jwt";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const hex = () => randomBytes(4).toString("hex");

/** What a broker without the right credentials is told when it connects (Moleculer reports it as `$transporter.error`). */
async function connectError(url: string, options: Record<string, unknown> = {}): Promise<{ code?: string; message: string }> {
	const broker = new ServiceBroker({
		namespace: `nats-auth-${hex()}`,
		nodeID: `outsider-${hex()}`,
		logger: false,
		// A URL string as any process would give it; and no retrying, a refusal is the answer.
		transporter: { type: "NATS", options: { url, ...options } },
		transit: { disableReconnect: true }
	});
	let error: { code?: string; message: string } | undefined;
	broker.localBus.on("$transporter.error", (payload: { error: { code?: string; message: string } }) => (error ??= payload.error));
	void broker.start().catch(() => undefined);
	try {
		return await waitFor(async () => error, 5000);
	} finally {
		await broker.stop().catch(() => undefined);
	}
}

// Private nats-server processes, not the shared one: NATS stands for "the NATS tools are here", required in CI.
describeWith(NATS)("NATS credentials", () => {
	const running: Array<{ stop(): Promise<unknown> }> = [];
	const natsServers: ManagedProcess[] = [];
	afterAll(async () => {
		for (const r of running.reverse()) await r.stop().catch(() => undefined);
		for (const n of natsServers) await n.kill();
	});

	/** A nats-server demanding `auth`, a server node and an agent node given `credentials`: both join, and the agent registers. */
	async function cluster(auth: NatsAuth, credentials: (url: string) => Record<string, string>) {
		const nats = await startNatsServer(undefined, auth);
		natsServers.push(nats);
		const env = { NAMESPACE: `nats-auth-${hex()}`, ...credentials(nats.url) };
		// A node the bus refuses never finishes starting (Moleculer retries the connection): fail fast, and say so.
		const starting = startServer({ ...env, NODE_ID: `srv-${hex()}` });
		const server: TestServer = await Promise.race([
			starting,
			new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the server node did not join the bus within 10 s")), 10_000).unref())
		]);
		running.push(server);
		expect(server.broker.transit?.connected).toBe(true);
		const viewer = client(server.url, server.token(["viewer"]));
		expect((await viewer.get("/api/v1/agents")).status).toBe(200);
		const agent = await startAgentNode("bus-agent", ["bus-work"], env);
		running.push(agent.broker);
		const registered = await waitFor(async () => (await viewer.get("/api/v1/agents")).body.agents.find((a: { node_id: string; status: string }) => a.node_id === agent.nodeID && a.status === "active"), 15_000);
		expect(registered).toMatchObject({ name: "bus-agent", capabilities: ["bus-work"] });
		return nats;
	}

	test("TRANSPORTER_TOKEN: a server node and an agent node with the token join; without it, or with another, the bus refuses", async () => {
		const token = `nats-token-${hex()}`;
		const nats = await cluster({ token }, url => ({ TRANSPORTER: url, TRANSPORTER_TOKEN: token }));
		expect(await connectError(nats.url)).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
		expect(await connectError(nats.url, { token: "guessed" })).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
	}, 30_000);

	test("user:password in the TRANSPORTER URL (percent-encoded, as a URL needs): both nodes join; a wrong password is refused", async () => {
		// A generated password may hold characters a URL must encode: the node must send the decoded one.
		const password = `p@ss/${hex()}:w+rd`;
		const nats = await cluster({ user: "mcp-node", password }, url => ({ TRANSPORTER: url.replace("nats://", `nats://mcp-node:${encodeURIComponent(password)}@`) }));
		expect(await connectError(nats.url)).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
		expect(await connectError(nats.url.replace("nats://", "nats://mcp-node:wrong@"))).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
	}, 30_000);

	test("TRANSPORTER_CREDS_FILE with an operator's JWT creds: both nodes join; no creds, or a stranger account's, are refused", async () => {
		const setup = operatorSetup();
		const credsPath = path.join(tempDir("nats-creds-"), "mcp.creds");
		fs.writeFileSync(credsPath, setup.creds, { mode: 0o600 });
		const strangerPath = path.join(tempDir("nats-creds-"), "stranger.creds");
		fs.writeFileSync(strangerPath, setup.strangerCreds, { mode: 0o600 });
		const nats = await cluster({ config: setup.config }, url => ({ TRANSPORTER: url, TRANSPORTER_CREDS_FILE: credsPath }));
		expect(await connectError(nats.url)).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
		const { credsAuthenticator } = await import("nats");
		expect(await connectError(nats.url, { authenticator: credsAuthenticator(fs.readFileSync(strangerPath)) })).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
	}, 30_000);

	test("TRANSPORTER_CREDS_FILE with a bare user nkey seed: both nodes join; without it, the bus refuses", async () => {
		const user = nkeyUser();
		const seedPath = path.join(tempDir("nats-nkey-"), "mcp.nk");
		fs.writeFileSync(seedPath, `${user.seed}\n`, { mode: 0o600 });
		const nats = await cluster({ config: user.config }, url => ({ TRANSPORTER: url, TRANSPORTER_CREDS_FILE: seedPath }));
		expect(await connectError(nats.url)).toMatchObject({ code: "AUTHORIZATION_VIOLATION" });
	}, 30_000);
});
