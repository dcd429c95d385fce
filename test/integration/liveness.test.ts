/**
 * Heartbeats are liveness, not writes. Two core nodes on one PostgreSQL and NATS: an agent that
 * beats only to node A stays alive on node B, whose answers show its latest beat and load; the
 * stored record is written with status changes only; and when the beats stop, both nodes see it
 * go offline, the record keeping when it was last heard.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "pg";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { request, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS, POSTGRES } from "../support/services";

const TIMEOUT_MS = 1500;

describeWith(POSTGRES, NATS)("heartbeats across two core nodes", () => {
	let db: TestDatabase;
	let a: TestServer;
	let b: TestServer;

	beforeAll(async () => {
		db = await createTestDatabase();
		const env = {
			DATABASE_URL: db.url,
			TRANSPORTER: `nats://${NATS.host}:${NATS.port}`,
			NAMESPACE: `liveness-${randomBytes(4).toString("hex")}`,
			HEARTBEAT_TIMEOUT_MS: String(TIMEOUT_MS)
		};
		a = await startServer({ ...env, NODE_ID: "core-a" }, ["agents", "api"]);
		b = await startServer({ ...env, NODE_ID: "core-b" }, ["agents", "api"]);
		await waitFor(async () => (await request(b.url, "GET", "/ready")).status === 200, 10_000);
	}, 30_000);

	afterAll(async () => {
		await Promise.all([a?.stop(), b?.stop()]);
		await db?.drop();
	});

	async function storedAgent(id: string): Promise<{ status: string; last_heartbeat: string; version: number }> {
		const client = new Client({ connectionString: db.url });
		await client.connect();
		try {
			const { rows } = await client.query(`SELECT "doc" FROM "agents" WHERE "id" = $1`, [id]);
			return rows[0].doc;
		} finally {
			await client.end();
		}
	}

	test("beats to one core node keep the agent alive on the other, without a write per beat; silence takes it offline on both", async () => {
		const operator = a.token(["operator"]);
		const viewer = b.token(["viewer"]);
		const registered = await request(a.url, "POST", "/api/v1/agents/register", {
			token: operator,
			body: { name: `beater-${randomBytes(3).toString("hex")}`, type: "worker", capabilities: ["x"] }
		});
		expect(registered.status).toBe(201);
		const { id, token } = registered.body as { id: string; token: string };
		const atRegistration = await storedAgent(id);

		// Three timeouts of beats, all to node A; node B's sweep runs all along.
		let lastBeat = 0;
		for (const until = Date.now() + 3 * TIMEOUT_MS; Date.now() < until; ) {
			const beat = await request(a.url, "POST", `/api/v1/agents/${id}/heartbeat`, { token, body: { current_load: 0.4 } });
			expect(beat.status).toBe(200);
			lastBeat = Date.now();
			await sleep(200);
		}
		await sleep(1100); // one batch of beats from A to B
		const onB = await request(b.url, "GET", `/api/v1/agents/${id}`, { token: viewer });
		expect(onB.status).toBe(200);
		expect(onB.body).toMatchObject({ status: "active", current_load: 0.4 });
		expect(Date.parse(onB.body.last_heartbeat)).toBeGreaterThanOrEqual(lastBeat - 1000);
		const listed = await request(b.url, "GET", "/api/v1/agents", { token: viewer });
		expect(listed.body.agents.find((x: { id: string }) => x.id === id)).toMatchObject({ status: "active", current_load: 0.4, last_heartbeat: onB.body.last_heartbeat });

		// ~20 beats, and the record is as it was registered.
		const afterBeats = await storedAgent(id);
		expect({ version: afterBeats.version, last_heartbeat: afterBeats.last_heartbeat }).toEqual({ version: atRegistration.version, last_heartbeat: atRegistration.last_heartbeat });

		// Silence: offline on both nodes, and the record keeps the last beat heard (by either node).
		await waitFor(async () => (await request(b.url, "GET", `/api/v1/agents/${id}`, { token: viewer })).body.status === "offline", 4 * TIMEOUT_MS);
		const offline = await storedAgent(id);
		expect(offline.status).toBe("offline");
		expect(Math.abs(Date.parse(offline.last_heartbeat) - lastBeat)).toBeLessThan(1000);
		expect((await request(a.url, "GET", `/api/v1/agents/${id}`, { token: operator })).body.status).toBe("offline");

		// A beat brings it back, written once with its new status.
		expect((await request(b.url, "POST", `/api/v1/agents/${id}/heartbeat`, { token, body: {} })).status).toBe(200);
		expect((await storedAgent(id)).status).toBe("active");
	}, 30_000);
});
