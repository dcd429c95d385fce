import jwt from "jsonwebtoken";
import { authenticateListener, isVisibleTo, RealtimeAuthError } from "../../src/gateway/realtime/access";
import { RealtimeHub, type Channel, type RealtimeClient } from "../../src/gateway/realtime/hub";
import { toWireMessage } from "../../src/gateway/realtime/messages";
import { MAX_SUBSCRIPTIONS_PER_CLIENT, parseSubscriptionRequest, SubscriptionError, Subscriptions } from "../../src/gateway/realtime/subscriptions";
import { createTokenVerifier } from "../../src/platform/verify-token";
import type { ClusterMessage, Principal, TaskUpdateMessage } from "../../src/types";

const NOW = new Date("2024-01-02T03:04:05.000Z");
const SECRET = "unit-secret";

const taskMessage = (fields: Partial<TaskUpdateMessage> = {}): TaskUpdateMessage => ({
	type: "task_update", task_id: "t1", pipeline_id: null, run_id: null, assigned_agent: null, status: "running", progress: 0,
	timestamp: NOW.toISOString(), ...fields
});

describe("toWireMessage", () => {
	test("task.updated keeps only the wire fields", () => {
		const task = { task_id: "t1", pipeline_id: "p", run_id: "r", assigned_agent: "a", status: "running", progress: 0.5, payload: { secret: 1 } };
		expect(toWireMessage("task.updated", { task }, NOW)).toEqual({
			type: "task_update", task_id: "t1", pipeline_id: "p", run_id: "r", assigned_agent: "a", status: "running", progress: 0.5,
			timestamp: "2024-01-02T03:04:05.000Z"
		});
	});

	test("a removed agent is offline; pipeline runs carry their stage figures", () => {
		expect(toWireMessage("agent.updated", { agent: { id: "a", status: "active", current_load: 0.2 }, removed: true }, NOW)).toMatchObject({
			type: "agent_update", agent_id: "a", status: "offline", current_load: 0.2
		});
		expect(toWireMessage("pipeline.progress", { run: { run_id: "r", pipeline_id: "p", status: "running", current_stage: 2, completed_stages: [0, 1, "x"], progress: 0.66 } }, NOW)).toEqual({
			type: "pipeline_progress", pipeline_id: "p", run_id: "r", status: "running", current_stage: 2, completed_stages: [0, 1], progress: 0.66,
			timestamp: NOW.toISOString()
		});
	});

	test("mcp.error: details default from the error; ids copied only when present", () => {
		expect(toWireMessage("mcp.error", { task_id: "t", error: "boom" }, NOW)).toEqual({
			type: "error", task_id: "t", error: "boom", details: { code: "INTERNAL_ERROR", message: "boom" }, timestamp: NOW.toISOString()
		});
	});

	test("malformed payloads are null", () => {
		expect(toWireMessage("task.updated", {}, NOW)).toBeNull();
		expect(toWireMessage("task.updated", { task: { task_id: "t" } }, NOW)).toBeNull();
		expect(toWireMessage("agent.updated", null, NOW)).toBeNull();
		expect(toWireMessage("pipeline.progress", { run: { run_id: "r" } }, NOW)).toBeNull();
		expect(toWireMessage("mcp.error", { details: {} }, NOW)).toBeNull();
	});
});

describe("subscriptions", () => {
	test("empty matches everything; otherwise any subscribed id matches", () => {
		const subs = new Subscriptions();
		expect(subs.matches(taskMessage())).toBe(true);
		subs.add({ pipeline_id: "p1" });
		subs.add({ agent_id: "a1" });
		expect(subs.matches(taskMessage())).toBe(false);
		expect(subs.matches(taskMessage({ pipeline_id: "p1" }))).toBe(true);
		expect(subs.matches(taskMessage({ assigned_agent: "a1" }))).toBe(true);
		expect(subs.matches({ type: "agent_update", agent_id: "a1", status: "active", current_load: 0, timestamp: "" })).toBe(true);
		subs.remove({ pipeline_id: "p1" });
		expect(subs.matches(taskMessage({ pipeline_id: "p1" }))).toBe(false);
		subs.remove({});
		expect(subs.isEmpty).toBe(true);
	});

	test("requests are validated", () => {
		expect(parseSubscriptionRequest({ type: "subscribe", task_id: "t" })).toEqual({ task_id: "t" });
		expect(() => parseSubscriptionRequest({})).toThrow(SubscriptionError);
		expect(() => parseSubscriptionRequest({ task: "t" })).toThrow(/unknown key "task"/);
		expect(() => parseSubscriptionRequest({ task_id: 5 })).toThrow(/non-empty string/);
		expect(() => parseSubscriptionRequest("t")).toThrow(SubscriptionError);
		expect(parseSubscriptionRequest(undefined, true)).toEqual({});
	});

	test("a client cannot pin unbounded memory", () => {
		const subs = new Subscriptions();
		for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_CLIENT; i++) subs.add({ task_id: `t${i}` });
		subs.add({ task_id: "t0" });
		expect(() => subs.add({ task_id: "one-more" })).toThrow(/at most/);
	});
});

describe("listener access", () => {
	const agent: Principal = { sub: "agent:a1", roles: ["agent"], agent_id: "a1" };

	test("agent tokens see their own agent and tasks only", () => {
		expect(isVisibleTo(agent, taskMessage({ assigned_agent: "a1" }))).toBe(true);
		expect(isVisibleTo(agent, taskMessage({ assigned_agent: "a2" }))).toBe(false);
		expect(isVisibleTo(agent, { type: "agent_update", agent_id: "a2", status: "active", current_load: 0, timestamp: "" })).toBe(false);
		expect(isVisibleTo(agent, { type: "pipeline_progress", pipeline_id: "p", run_id: "r", status: "running", current_stage: 0, completed_stages: [], progress: 0, timestamp: "" })).toBe(false);
		expect(isVisibleTo({ sub: "v", roles: ["viewer"] }, taskMessage({ assigned_agent: "a2" }))).toBe(true);
	});

	test("tokens are verified and their expiry kept", async () => {
		const verifier = createTokenVerifier({ jwtSecret: SECRET });
		const exp = Math.floor(Date.now() / 1000) + 60;
		const session = await authenticateListener(verifier, jwt.sign({ sub: "u", roles: ["viewer"], exp }, SECRET));
		expect(session).toEqual({ principal: { sub: "u", roles: ["viewer"] }, expiresAt: exp * 1000 });
		await expect(authenticateListener(verifier, undefined)).rejects.toThrow(new RealtimeAuthError("missing token"));
		await expect(authenticateListener(verifier, jwt.sign({ sub: "u", roles: [] }, SECRET, { expiresIn: 60 }))).rejects.toThrow(/may not receive events/);
	});
});

describe("RealtimeHub", () => {
	const viewer: Principal = { sub: "v", roles: ["viewer"] };
	function fakeClient(id: string, pending = 0): RealtimeClient & { closed: string[] } {
		const closed: string[] = [];
		return {
			id, channel: "ws", session: { principal: viewer }, subscriptions: new Subscriptions(), closed,
			pendingBytes: () => pending,
			disconnect: (_reason, cause) => closed.push(cause)
		};
	}

	test("connection slots are one budget, released once", () => {
		const hub = new RealtimeHub({ maxConnections: 2, maxUnauthenticatedPerAddress: 10, bufferLimitBytes: 1000, onDrop: () => undefined });
		const a = hub.reserveSlot()!;
		expect(hub.reserveSlot()).not.toBeNull();
		expect(hub.reserveSlot()).toBeNull();
		a.release();
		a.release();
		expect(hub.connectionCount).toBe(1);
		expect(hub.reserveSlot()).not.toBeNull();
	});

	test("a client with a backlog past the bound is dropped; an idle one always gets the event", () => {
		const drops: string[] = [];
		const hub = new RealtimeHub({ maxConnections: 10, maxUnauthenticatedPerAddress: 10, bufferLimitBytes: 100, onDrop: (c, reason) => drops.push(`${c.id}: ${reason}`) });
		const delivered: string[][] = [];
		const channel: Channel = { name: "ws", deliver: clients => delivered.push(clients.map(c => c.id)) };
		hub.addChannel(channel);
		const idle = fakeClient("idle");
		const slow = fakeClient("slow", 50);
		hub.add(idle);
		hub.add(slow);
		const big: ClusterMessage = { ...taskMessage(), task_id: "x".repeat(200) };
		expect(hub.publish(big)).toBe(1);
		expect(delivered).toEqual([["idle"]]);
		expect(slow.closed).toEqual(["slow"]);
		expect(drops).toEqual([expect.stringMatching(/^slow: slow consumer: 50 bytes pending, limit 100/)]);
		expect(hub.clientCount).toBe(1);
	});
});
