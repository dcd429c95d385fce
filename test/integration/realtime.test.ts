/**
 * Real-time events over real sockets: socket.io and `/ws` clients against a running gateway,
 * and two gateways joined over NATS.
 */
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import jwt from "jsonwebtoken";
import type { ServiceBroker } from "moleculer";
import { io as ioClient, type Socket as IoClientSocket } from "socket.io-client";
import WebSocket from "ws";
import type { ClusterMessage, PipelineRun, Task } from "../../src/types";
import { TEST_SECRETS } from "../support/broker";
import { request, waitFor } from "../support/http";
import { startServer, type TestServer } from "../support/server";
import { describeWith, NATS } from "../support/services";

const REALTIME = ["api", "agents", "realtime"];
const EVENT_TYPES = ["task_update", "agent_update", "pipeline_progress", "error"] as const;

// ---------- fabricated cluster events (the task and pipeline services emit these for real) ----------
function fakeTask(overrides: Partial<Task> = {}): Task {
	const now = new Date().toISOString();
	return {
		task_id: `task-${randomUUID()}`, created_by: null, pipeline_id: null, run_id: null, stage: null, type: "processing", payload: {},
		priority: "medium", timeout: 60, retry_count: 0, required_capabilities: [], status: "running", progress: 0,
		assigned_agent: null, attempt: 1, result: null, error: null, logs: [], idempotency_key: null, created_at: now,
		started_at: now, updated_at: now, finished_at: null, next_attempt_at: null, ...overrides
	};
}

function fakeRun(overrides: Partial<PipelineRun> = {}): PipelineRun {
	const now = new Date().toISOString();
	return {
		run_id: `run-${randomUUID()}`, created_by: null, pipeline_id: "pipeline-x", status: "running", current_stage: 1, completed_stages: [0],
		progress: 0.5, stages: [], input_data: {}, parameters: {}, notification: null, created_at: now, updated_at: now,
		finished_at: null, ...overrides
	};
}

const emitTask = (broker: ServiceBroker, task: Task) => broker.emit("task.updated", { task });
const emitRun = (broker: ServiceBroker, run: PipelineRun) => broker.emit("pipeline.progress", { run });

// ---------- clients ----------
interface IoListener {
	socket: IoClientSocket;
	received: ClusterMessage[];
}

function connectIo(url: string, auth: Record<string, unknown>): Promise<IoListener> {
	const socket = ioClient(url, { auth, transports: ["websocket"], forceNew: true, reconnection: false });
	const received: ClusterMessage[] = [];
	for (const type of EVENT_TYPES) socket.on(type as string, (message: ClusterMessage) => received.push(message));
	return new Promise((resolve, reject) => {
		socket.once("connect", () => resolve({ socket, received }));
		socket.once("connect_error", err => {
			socket.close();
			reject(err);
		});
	});
}

async function ioRefusal(url: string, auth: Record<string, unknown>): Promise<string> {
	try {
		const { socket } = await connectIo(url, auth);
		socket.close();
		return "connected";
	} catch (err) {
		return (err as Error).message;
	}
}

function ioRequest(socket: IoClientSocket, event: "subscribe" | "unsubscribe", body: unknown): Promise<{ ok: boolean; error?: string }> {
	return socket.timeout(5000).emitWithAck(event, body);
}

/** A `/ws` client that keeps every JSON message it gets and how the connection ended. */
class WsListener {
	readonly messages: Record<string, unknown>[] = [];
	closed: { code: number; reason: string } | null = null;
	private readonly opened: Promise<void>;

	constructor(readonly ws: WebSocket) {
		ws.on("message", data => this.messages.push(JSON.parse(data.toString())));
		ws.on("close", (code, reason) => (this.closed = { code, reason: reason.toString() }));
		ws.on("error", () => undefined);
		this.opened = new Promise((resolve, reject) => {
			ws.once("open", () => resolve());
			ws.once("error", reject);
		});
	}

	static async open(url: string): Promise<WsListener> {
		const listener = new WsListener(new WebSocket(`${url.replace(/^http/, "ws")}/ws`));
		await listener.opened;
		return listener;
	}

	static async authenticated(url: string, token: string): Promise<WsListener> {
		const listener = await WsListener.open(url);
		listener.send({ type: "auth", token });
		await listener.next(m => m.type === "auth_ok" || m.type === "auth_error");
		if (!listener.messages.some(m => m.type === "auth_ok")) throw new Error(`auth refused: ${JSON.stringify(listener.messages)}`);
		return listener;
	}

	send(message: unknown): void {
		this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
	}

	/** Events only (not the protocol's own replies). */
	get events(): ClusterMessage[] {
		return this.messages.filter(m => (EVENT_TYPES as readonly unknown[]).includes(m.type)) as unknown as ClusterMessage[];
	}

	next(match: (m: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
		return waitFor(async () => this.messages.find(match), timeoutMs, 10);
	}

	async closedWith(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
		return waitFor(async () => this.closed, timeoutMs, 10);
	}

	close(): void {
		this.ws.close();
	}
}

/**
 * Stops a server that may have lived less than half a second: moleculer-web debounces a route
 * rebuild by 500 ms on every service change, and that pending timer would keep the jest worker up.
 */
async function stopServer(server: TestServer): Promise<void> {
	const api = server.broker.getLocalService("api") as unknown as { regenerateAllAutoAliases?: { cancel?: () => void } } | undefined;
	api?.regenerateAllAutoAliases?.cancel?.();
	await server.stop();
}

const taskIdsOf = (messages: ClusterMessage[]) => messages.filter(m => m.type === "task_update").map(m => (m as { task_id: string }).task_id);
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

describe("real-time events", () => {
	let server: TestServer;
	let viewerToken: string;
	const cleanups: Array<() => void> = [];
	const track = <T extends { close(): void }>(c: T) => (cleanups.push(() => c.close()), c);
	const trackIo = (l: IoListener) => (cleanups.push(() => l.socket.close()), l);

	beforeAll(async () => {
		server = await startServer({}, REALTIME);
		viewerToken = server.token(["viewer"], "vic");
	});
	afterEach(() => {
		for (const cleanup of cleanups.splice(0)) cleanup();
	});
	afterAll(() => stopServer(server));

	const registerAgent = async (name: string) => {
		const res = await request(server.url, "POST", "/api/v1/agents/register", {
			body: { name, type: "worker", capabilities: ["task-execution"] },
			headers: { "X-API-Key": TEST_SECRETS.API_KEY }
		});
		expect(res.status).toBe(201);
		return res.body as { id: string; token: string };
	};

	describe("authentication", () => {
		const expired = () => jwt.sign({ sub: "old", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) - 10 }, TEST_SECRETS.JWT_SECRET);
		const wrongKey = () => jwt.sign({ sub: "x", roles: ["viewer"] }, "another-secret");

		test("socket.io refuses a missing, bad, expired or role-less token, saying why", async () => {
			expect(await ioRefusal(server.url, {})).toBe("unauthorized: missing token");
			expect(await ioRefusal(server.url, { token: "not.a.jwt" })).toBe("unauthorized: Invalid token");
			expect(await ioRefusal(server.url, { token: wrongKey() })).toBe("unauthorized: Invalid token");
			expect(await ioRefusal(server.url, { token: expired() })).toBe("unauthorized: Token expired");
			const noRoles = jwt.sign({ sub: "nobody", roles: [] }, TEST_SECRETS.JWT_SECRET, { expiresIn: 60 });
			expect(await ioRefusal(server.url, { token: noRoles })).toMatch(/^unauthorized: roles \[\] may not receive events/);
			expect(await ioRefusal(server.url, { token: viewerToken })).toBe("connected");
		});

		test("/ws: a missing, bad or expired token gets auth_error and close 4401", async () => {
			for (const [first, why] of [
				[{ type: "auth" }, /missing token/],
				[{ type: "auth", token: wrongKey() }, /Invalid token/],
				[{ type: "auth", token: expired() }, /Token expired/],
				[{ type: "subscribe", task_id: "t" }, /expected \{"type":"auth"/],
				["not json", /expected \{"type":"auth"/]
			] as const) {
				const ws = track(await WsListener.open(server.url));
				ws.send(first);
				expect(await ws.next(m => m.type === "auth_error")).toEqual({ type: "auth_error", message: expect.stringMatching(why) });
				expect((await ws.closedWith()).code).toBe(4401);
			}
		});

		test("/ws: the spec's example works as written: connect, send auth, auth_ok", async () => {
			const ws = track(new WebSocket(`${server.url.replace("http", "ws")}/ws`));
			const replies: unknown[] = [];
			ws.on("message", data => replies.push(JSON.parse(data.toString())));
			ws.on("open", () => ws.send(JSON.stringify({ type: "auth", token: viewerToken })));
			await waitFor(async () => replies.length > 0);
			expect(replies).toEqual([{ type: "auth_ok" }]);
		});

		test("an upgrade to any other path is answered 404 at once", async () => {
			const ws = new WebSocket(`${server.url.replace("http", "ws")}/elsewhere`);
			const error = await new Promise<Error>(resolve => ws.once("error", resolve));
			expect(error.message).toMatch(/404/);
		});

		test("a connection ends when its token expires", async () => {
			const shortLived = jwt.sign({ sub: "brief", roles: ["viewer"], exp: Math.floor(Date.now() / 1000) + 2 }, TEST_SECRETS.JWT_SECRET);
			const ws = track(await WsListener.authenticated(server.url, shortLived));
			const io = trackIo(await connectIo(server.url, { token: shortLived }));
			const ioGone = new Promise<string>(resolve => io.socket.once("disconnect", resolve));
			expect(await ws.next(m => m.type === "auth_error", 4000)).toEqual({ type: "auth_error", message: "token expired" });
			expect((await ws.closedWith()).code).toBe(4401);
			expect(await ioGone).toBe("io server disconnect");
		});
	});

	describe("delivery", () => {
		test("every event type reaches both channels in order, with a timestamp", async () => {
			const ws = track(await WsListener.authenticated(server.url, viewerToken));
			const io = trackIo(await connectIo(server.url, { token: viewerToken }));
			const task = fakeTask({ pipeline_id: "pipe-1", run_id: "run-1", assigned_agent: "agent-z" });
			for (const progress of [0.1, 0.2, 0.3]) await emitTask(server.broker, { ...task, progress });
			await emitRun(server.broker, fakeRun({ pipeline_id: "pipe-1", run_id: "run-1" }));
			await server.broker.emit("mcp.error", { task_id: task.task_id, error: "Task execution failed", details: { code: "EXECUTION_ERROR", message: "Invalid input data format" } });
			const agent = await registerAgent("rt-delivery");

			for (const received of [() => ws.events, () => io.received]) {
				await waitFor(async () => received().some(m => m.type === "agent_update"));
				const events = received();
				expect(events.map(m => m.type)).toEqual(["task_update", "task_update", "task_update", "pipeline_progress", "error", "agent_update"]);
				expect(events.slice(0, 3).map(m => (m as { progress: number }).progress)).toEqual([0.1, 0.2, 0.3]);
				// Numbered by this gateway node, one after another: a listener of everything sees no gap.
				const seqs = events.map(m => (m as unknown as { seq: number }).seq);
				expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
				expect(events[0]).toEqual({
					type: "task_update", task_id: task.task_id, pipeline_id: "pipe-1", run_id: "run-1", assigned_agent: "agent-z",
					status: "running", progress: 0.1, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/), seq: expect.any(Number)
				});
				expect(events[3]).toEqual({
					type: "pipeline_progress", pipeline_id: "pipe-1", run_id: "run-1", status: "running", current_stage: 1,
					completed_stages: [0], progress: 0.5, timestamp: expect.any(String), seq: expect.any(Number)
				});
				expect(events[4]).toEqual({
					type: "error", task_id: task.task_id, error: "Task execution failed",
					details: { code: "EXECUTION_ERROR", message: "Invalid input data format" }, timestamp: expect.any(String), seq: expect.any(Number)
				});
				expect(events[5]).toEqual({ type: "agent_update", agent_id: agent.id, status: "active", current_load: 0, timestamp: expect.any(String), seq: expect.any(Number) });
			}
		});

		test("an agent heartbeat over REST becomes an agent_update", async () => {
			const agent = await registerAgent("rt-heartbeat");
			const io = trackIo(await connectIo(server.url, { token: viewerToken }));
			const res = await request(server.url, "POST", `/api/v1/agents/${agent.id}/heartbeat`, { token: agent.token, body: { status: "busy", current_load: 0.75 } });
			expect(res.status).toBe(200);
			await waitFor(async () => io.received.length > 0);
			expect(io.received).toEqual([{ type: "agent_update", agent_id: agent.id, status: "busy", current_load: 0.75, timestamp: expect.any(String), seq: expect.any(Number) }]);
		});

		test("a malformed event payload is dropped, not relayed half-filled", async () => {
			const warn = jest.spyOn(server.broker.getLocalService("realtime").logger, "warn").mockImplementation(() => undefined);
			const io = trackIo(await connectIo(server.url, { token: viewerToken }));
			await server.broker.emit("task.updated", { task: { status: "running" } });
			await server.broker.emit("pipeline.progress", "nonsense");
			const last = fakeTask();
			await emitTask(server.broker, last);
			await waitFor(async () => io.received.length > 0);
			expect(taskIdsOf(io.received)).toEqual([last.task_id]);
			expect(warn.mock.calls.map(call => call[0])).toEqual([{ event: "task.updated" }, { event: "pipeline.progress" }]);
			warn.mockRestore();
		});
	});

	describe("subscriptions", () => {
		test("socket.io: task_id, pipeline_id and agent_id narrow what a client gets; unsubscribe widens again", async () => {
			const io = trackIo(await connectIo(server.url, { token: viewerToken }));
			expect(await ioRequest(io.socket, "subscribe", { task_id: "t-1" })).toMatchObject({ ok: true });
			expect(await ioRequest(io.socket, "subscribe", { pipeline_id: "p-1" })).toMatchObject({ ok: true });
			expect(await ioRequest(io.socket, "subscribe", { agent_id: "a-1" })).toMatchObject({
				ok: true, subscriptions: { task_id: ["t-1"], pipeline_id: ["p-1"], run_id: [], agent_id: ["a-1"] }
			});
			expect(await ioRequest(io.socket, "subscribe", { taskid: "typo" })).toEqual({ ok: false, error: expect.stringMatching(/unknown key "taskid"/) });

			await emitTask(server.broker, fakeTask({ task_id: "t-other" }));
			await emitTask(server.broker, fakeTask({ task_id: "t-1" }));
			await emitTask(server.broker, fakeTask({ task_id: "t-in-p1", pipeline_id: "p-1" }));
			await emitTask(server.broker, fakeTask({ task_id: "t-in-p2", pipeline_id: "p-2" }));
			await emitTask(server.broker, fakeTask({ task_id: "t-on-a1", assigned_agent: "a-1" }));
			await emitRun(server.broker, fakeRun({ pipeline_id: "p-2" }));
			await emitRun(server.broker, fakeRun({ pipeline_id: "p-1", run_id: "r-p1" }));
			await server.broker.emit("mcp.error", { agent_id: "a-2", error: "x", details: { code: "E", message: "x" } });
			await server.broker.emit("mcp.error", { agent_id: "a-1", error: "mine", details: { code: "E", message: "x" } });
			await emitTask(server.broker, fakeTask({ task_id: "t-1", progress: 1, status: "completed" }));

			await waitFor(async () => io.received.length >= 6);
			await sleep(100);
			expect(io.received.map(m => `${m.type}:${"task_id" in m ? m.task_id : "run_id" in m ? m.run_id : m.agent_id}`)).toEqual([
				"task_update:t-1", "task_update:t-in-p1", "task_update:t-on-a1", "pipeline_progress:r-p1", "error:a-1", "task_update:t-1"
			]);

			expect(await ioRequest(io.socket, "unsubscribe", {})).toMatchObject({ ok: true, subscriptions: { task_id: [], pipeline_id: [], agent_id: [] } });
			await emitTask(server.broker, fakeTask({ task_id: "t-any" }));
			await waitFor(async () => taskIdsOf(io.received).includes("t-any"));
		});

		test("/ws: subscribe and unsubscribe messages, acknowledged; bad ones are errors", async () => {
			const ws = track(await WsListener.authenticated(server.url, viewerToken));
			ws.send({ type: "subscribe", task_id: "w-1" });
			ws.send({ type: "subscribe", agent_id: "wa-1" });
			await ws.next(m => m.type === "subscribed" && (m.subscriptions as { agent_id: string[] }).agent_id.length === 1);
			ws.send({ type: "subscribe", task_id: "" });
			expect(await ws.next(m => m.type === "request_error")).toEqual({ type: "request_error", message: expect.stringMatching(/task_id must be a non-empty string/) });
			ws.send({ type: "shout" });
			expect(await ws.next(m => m.type === "request_error" && /unknown message type/.test(String(m.message)))).toBeTruthy();

			await emitTask(server.broker, fakeTask({ task_id: "w-2" }));
			await emitTask(server.broker, fakeTask({ task_id: "w-1" }));
			await server.broker.emit("agent.updated", { agent: { id: "wa-2", status: "active", current_load: 0 } });
			await server.broker.emit("agent.updated", { agent: { id: "wa-1", status: "busy", current_load: 0.5 } });
			await waitFor(async () => ws.events.length >= 2);
			await sleep(100);
			expect(ws.events.map(m => m.type)).toEqual(["task_update", "agent_update"]);
			expect(taskIdsOf(ws.events)).toEqual(["w-1"]);
			expect(ws.events[1]).toMatchObject({ agent_id: "wa-1", status: "busy" });

			ws.send({ type: "unsubscribe", task_id: "w-1" });
			await ws.next(m => m.type === "unsubscribed");
			await emitTask(server.broker, fakeTask({ task_id: "w-1" }));
			await server.broker.emit("agent.updated", { agent: { id: "wa-1", status: "active", current_load: 0 } });
			await waitFor(async () => ws.events.length >= 3);
			await sleep(100);
			expect(ws.events.map(m => m.type)).toEqual(["task_update", "agent_update", "agent_update"]);
		});
	});

	describe("agent tokens", () => {
		test("see only their own agent and the tasks assigned to it, on both channels", async () => {
			const mine = await registerAgent("rt-scope-mine");
			const other = await registerAgent("rt-scope-other");
			const ws = track(await WsListener.authenticated(server.url, mine.token));
			const io = trackIo(await connectIo(server.url, { token: mine.token }));

			await emitTask(server.broker, fakeTask({ task_id: "unassigned" }));
			await emitTask(server.broker, fakeTask({ task_id: "theirs", assigned_agent: other.id }));
			await emitTask(server.broker, fakeTask({ task_id: "ours", assigned_agent: mine.id }));
			await emitRun(server.broker, fakeRun());
			await request(server.url, "POST", `/api/v1/agents/${other.id}/heartbeat`, { token: other.token, body: { current_load: 0.4 } });
			await request(server.url, "POST", `/api/v1/agents/${mine.id}/heartbeat`, { token: mine.token, body: { current_load: 0.6 } });
			// Subscriptions narrow within the scope; they never widen it.
			expect(await ioRequest(io.socket, "subscribe", { agent_id: other.id })).toMatchObject({ ok: true });
			await emitTask(server.broker, fakeTask({ task_id: "theirs-2", assigned_agent: other.id }));
			await emitTask(server.broker, fakeTask({ task_id: "ours-2", assigned_agent: mine.id }));

			await waitFor(async () => taskIdsOf(ws.events).includes("ours-2"));
			await sleep(100);
			expect(ws.events.map(m => m.type)).toEqual(["task_update", "agent_update", "task_update"]);
			expect(taskIdsOf(ws.events)).toEqual(["ours", "ours-2"]);
			expect(ws.events[1]).toMatchObject({ agent_id: mine.id, current_load: 0.6 });
			expect(io.received.map(m => m.type)).toEqual(["task_update", "agent_update"]);
			expect(taskIdsOf(io.received)).toEqual(["ours"]);
		});
	});

	describe("limits", () => {
		test("MAX_WS_CONNECTIONS counts both channels; a freed slot can be reused", async () => {
			const limited = await startServer({ MAX_WS_CONNECTIONS: "2" }, REALTIME);
			try {
				const token = limited.token(["viewer"]);
				const io = await connectIo(limited.url, { token });
				const ws = await WsListener.authenticated(limited.url, token);

				expect(await ioRefusal(limited.url, { token })).toBe("too many connections");
				const third = await WsListener.open(limited.url);
				expect(await third.next(m => m.type === "error")).toEqual({ type: "error", error: "too many connections" });
				expect((await third.closedWith()).code).toBe(1013);

				io.socket.close();
				const again = await waitFor(async () => {
					try {
						return await connectIo(limited.url, { token });
					} catch {
						return null;
					}
				});
				again.socket.close();
				ws.close();
			} finally {
				await stopServer(limited);
			}
		});

		test("an unauthenticated /ws socket is closed after WS_AUTH_TIMEOUT_MS", async () => {
			const quick = await startServer({ WS_AUTH_TIMEOUT_MS: "300" }, REALTIME);
			try {
				const started = Date.now();
				const idle = await WsListener.open(quick.url);
				const closed = await idle.closedWith(3000);
				expect(closed).toEqual({ code: 4401, reason: "authentication timeout" });
				expect(Date.now() - started).toBeGreaterThanOrEqual(250);
				expect(idle.messages).toEqual([{ type: "auth_error", message: "authentication timeout" }]);
				// An authenticated socket outlives the timeout.
				const authed = await WsListener.authenticated(quick.url, quick.token(["viewer"]));
				await sleep(500);
				expect(authed.closed).toBeNull();
				authed.close();
			} finally {
				await stopServer(quick);
			}
		});

		test("a slow consumer is dropped, with a logged reason, and the others get everything", async () => {
			const bounded = await startServer({ WS_CLIENT_BUFFER_BYTES: String(64 * 1024) }, REALTIME);
			try {
				const token = bounded.token(["viewer"]);
				const realtime = bounded.broker.getLocalService("realtime");
				const warn = jest.spyOn(realtime.logger, "warn").mockImplementation(() => undefined);
				const fast = await WsListener.authenticated(bounded.url, token);
				const fastIo = await connectIo(bounded.url, { token });
				const slow = await WsListener.authenticated(bounded.url, token);
				const slowIo = await connectIo(bounded.url, { token });
				// Stop reading: the kernel buffers fill, then the server's own buffer for this client.
				const slowTcp = (slow.ws as unknown as { _socket: Socket })._socket;
				const slowIoTcp = (slowIo.socket.io.engine.transport as unknown as { ws: { _socket: Socket } }).ws._socket;
				slowTcp.pause();
				slowIoTcp.pause();

				const count = 400;
				const bulk = "x".repeat(64 * 1024);
				for (let i = 0; i < count; i++) {
					await bounded.broker.emit("mcp.error", { task_id: `bulk-${i}`, error: "big", details: { code: "E", message: bulk } });
					// Let the fast clients read between events, as separate processes would.
					await new Promise(r => setImmediate(r));
				}
				await waitFor(async () => fast.events.length === count && fastIo.received.length === count, 20_000);
				expect(fast.events.map(m => (m as { task_id: string }).task_id)).toEqual(Array.from({ length: count }, (_, i) => `bulk-${i}`));

				const dropped = warn.mock.calls.filter(call => String(call[1]).includes("disconnected")).map(call => call[0]);
				expect(dropped).toHaveLength(2);
				expect(dropped).toEqual(
					expect.arrayContaining([
						expect.objectContaining({ client_id: expect.stringMatching(/^ws-/), channel: "ws", reason: expect.stringMatching(/^slow consumer/) }),
						expect.objectContaining({ client_id: slowIo.socket.id, channel: "socket.io", reason: expect.stringMatching(/^slow consumer/) })
					])
				);

				const ioGone = new Promise(resolve => slowIo.socket.once("disconnect", resolve));
				slowTcp.resume();
				slowIoTcp.resume();
				await slow.closedWith(10_000);
				await ioGone;
				expect(slow.events.length).toBeLessThan(count);
				expect(slowIo.received.length).toBeLessThan(count);
				fast.close();
				fastIo.socket.close();
			} finally {
				await stopServer(bounded);
			}
		});
	});

	describe("nodes", () => {
		test("a node without the gateway runs no channels and ignores the events", async () => {
			const headless = await startServer({}, ["agents", "realtime"]);
			try {
				const realtime = headless.broker.getLocalService("realtime") as unknown as { hub: unknown };
				expect(realtime.hub).toBeNull();
				await emitTask(headless.broker, fakeTask());
			} finally {
				await stopServer(headless);
			}
		});
	});

	describe("stopping", () => {
		test("broker stop closes both channels promptly", async () => {
			const stopping = await startServer({}, REALTIME);
			const token = stopping.token(["viewer"]);
			const ws = await WsListener.authenticated(stopping.url, token);
			const io = await connectIo(stopping.url, { token });
			const ioGone = new Promise<string>(resolve => io.socket.once("disconnect", resolve));
			const started = Date.now();
			await stopServer(stopping);
			expect(Date.now() - started).toBeLessThan(5000);
			expect((await ws.closedWith()).code).toBe(1001);
			expect(await ioGone).toBe("io server disconnect");
		});
	});
});

describeWith(NATS)("real-time events across two gateways (NATS)", () => {
	let gatewayA: TestServer;
	let gatewayB: TestServer;
	const namespace = `rt-${randomUUID().slice(0, 8)}`;

	beforeAll(async () => {
		const env = { TRANSPORTER: `nats://${NATS.host}:${NATS.port}`, NAMESPACE: namespace, NODE_HEARTBEAT_INTERVAL_SEC: "1" };
		gatewayA = await startServer({ ...env, NODE_ID: `${namespace}-a` }, ["api", "realtime", "agents"]);
		gatewayB = await startServer({ ...env, NODE_ID: `${namespace}-b` }, ["api", "realtime"]);
		await gatewayB.broker.waitForServices(["agents"], 10_000);
		// A must know B's realtime handlers before it emits, or the event has nowhere to go there.
		await waitFor(async () => {
			const events = (await gatewayA.broker.call("$node.events", { onlyAvailable: true })) as { name: string; group: string }[];
			return events.some(e => e.name === "agent.updated" && e.group === `realtime@${namespace}-b`);
		});
	}, 30_000);
	afterAll(async () => {
		if (gatewayB) await stopServer(gatewayB);
		if (gatewayA) await stopServer(gatewayA);
	});

	test("a client on gateway B gets an event caused on gateway A exactly once", async () => {
		const onB = await connectIo(gatewayB.url, { token: gatewayB.token(["viewer"]) });
		const onA = await connectIo(gatewayA.url, { token: gatewayA.token(["viewer"]) });
		const wsOnB = await WsListener.authenticated(gatewayB.url, gatewayB.token(["viewer"]));
		try {
			const res = await request(gatewayA.url, "POST", "/api/v1/agents/register", {
				body: { name: "rt-cluster-agent", type: "worker", capabilities: ["task-execution"] },
				headers: { "X-API-Key": TEST_SECRETS.API_KEY }
			});
			expect(res.status).toBe(201);
			const task = fakeTask();
			await emitTask(gatewayA.broker, task);
			await waitFor(async () => onB.received.length >= 2 && onA.received.length >= 2 && wsOnB.events.length >= 2);
			await sleep(500);
			for (const received of [onB.received, onA.received, wsOnB.events]) {
				expect(received.map(m => m.type)).toEqual(["agent_update", "task_update"]);
				expect(received[0]).toMatchObject({ agent_id: res.body.id });
				expect(taskIdsOf(received)).toEqual([task.task_id]);
			}
		} finally {
			onB.socket.close();
			onA.socket.close();
			wsOnB.close();
		}
	});

	test("broadcast by an emitter also reaches each gateway exactly once", async () => {
		const onB = await connectIo(gatewayB.url, { token: gatewayB.token(["viewer"]) });
		try {
			const task = fakeTask();
			await gatewayA.broker.broadcast("task.updated", { task });
			await waitFor(async () => onB.received.length >= 1);
			await sleep(300);
			expect(taskIdsOf(onB.received)).toEqual([task.task_id]);
		} finally {
			onB.socket.close();
		}
	});
});
