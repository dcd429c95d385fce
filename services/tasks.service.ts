/**
 * Tasks: one actor per task plus the dispatcher.
 *
 * A task's record changes only through `mutate`: its mailbox on this node serialises the change,
 * and a compare-and-set on `version` in the store makes a concurrent writer on another node lose
 * cleanly (we reload and re-apply). The dispatcher keeps the queue and the agents' view in memory,
 * asks the pure policy (`src/domain/tasks/dispatch.ts`) for assignments whenever something changes (a task
 * arrives, an agent registers or frees up, a backoff ends), and delivers each assignment.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context, Service } from "moleculer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { mayReportOnTask } from "../src/domain/access";
import { acceptsWork } from "../src/domain/agents/status";
import { appConfig } from "../src/platform/app-config";
import { retryDelayMs } from "../src/domain/backoff";
import type { AppConfig } from "../src/platform/config";
import { DeliveryBreaker } from "../src/runtime/delivery/breaker";
import { planDispatch, type DispatchAgent, type DispatchTask } from "../src/domain/tasks/dispatch";
import { conflict, forbidden, notFound } from "../src/platform/errors";
import { KeyedQueue } from "../src/runtime/keyed-queue";
import { localGatewayPort, localGatewayServer } from "../src/gateway/local-gateway";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { DuplicateKeyError, type Filter } from "../src/storage/entity-store";
import { afterAttemptFailure, assertTransition, IllegalTransitionError, isTerminal } from "../src/domain/tasks/state-machine";
import { mintToken } from "../src/platform/tokens";
import {
	EVENTS, PRIORITIES, TASK_STATUSES,
	type Agent, type AgentUpdatedEvent, type LogLevelName, type Principal, type Task, type TaskDelivery, type TaskStatus, type TaskSubmission
} from "../src/types";

/**
 * The stored record: the wire task plus its optimistic-concurrency version and the node that owns
 * it (the one actor instance allowed to drive it; see `ownerOf`).
 */
export type StoredTask = Task & { version: number; owner_node: string };
type Meta = { user?: Principal | null; idempotencyKey?: string; forwarded?: boolean };
type Change = Partial<Task>;

const DELIVERY_TIMEOUT_MS = 10_000;
/** Wait before offering a task again after its agent could not be reached (its node may still be announcing itself). */
const UNREACHABLE_RETRY_MS = 250;
const NEVER_DELIVERED_ERRORS = new Set(["ServiceNotFoundError", "ServiceNotAvailableError"]);
const MAX_LOGS = 200;

export interface TaskFailure {
	code: "EXECUTION_ERROR" | "TIMEOUT" | "DELIVERY_FAILED" | "AGENT_LOST";
	message: string;
	retryable: boolean;
}

interface TasksThis extends Service, StorageThis<StoredTask> {
	config: AppConfig;
	mailbox: KeyedQueue;
	/** Live (non-terminal) tasks this node owns, by id. */
	live: Map<string, StoredTask>;
	agents: Map<string, Agent>;
	/** task id → timer bounding the current attempt. */
	attemptTimers: Map<string, NodeJS.Timeout>;
	backoffTimers: Map<string, NodeJS.Timeout>;
	breaker: DeliveryBreaker;
	dispatchScheduled: boolean;
	/** The pass in progress: passes never overlap, so two cannot plan the same queued task. */
	dispatching: Promise<void>;
	loadFlush?: NodeJS.Timeout;
	dirtyAgents: Set<string>;
	load(id: string): Promise<StoredTask>;
	mutate(id: string, change: (task: StoredTask) => Change | null): Promise<StoredTask>;
	announce(task: StoredTask): void;
	announceFailure(task: StoredTask, failure: TaskFailure): void;
	requeue(id: string, agentId: string, reason: string, delayMs?: number, undoAttempt?: boolean): Promise<void>;
	scheduleDispatch(): void;
	dispatch(): Promise<void>;
	start(taskId: string, agentId: string): Promise<void>;
	deliver(task: StoredTask, agent: Agent): Promise<void>;
	finishAttempt(id: string, attempt: number, outcome: { result: unknown } | { failure: TaskFailure }): Promise<StoredTask | null>;
	requeueFromAgent(agentId: string, reason: string): Promise<void>;
	track(task: StoredTask): void;
	markAgentDirty(agentId: string): void;
	callbackBase(): string;
	runningByAgent(): Map<string, number>;
	ownerCall<T>(ctx: Context<{ id: string }, Meta>): Promise<{ forwarded: true; result: T } | { forwarded: false }>;
	adopt(task: StoredTask): Promise<StoredTask | null>;
	adoptOrphans(isOrphan: (ownerNode: string) => boolean): Promise<void>;
	resume(task: StoredTask): Promise<void>;
	armAttemptTimer(task: StoredTask): void;
	nodeAlive(nodeId: string): boolean;
}

function logEntry(level: LogLevelName, message: string) {
	return { timestamp: new Date().toISOString(), level, message };
}

function withLog(task: Task, level: LogLevelName, message: string): Task["logs"] {
	return [...task.logs, logEntry(level, message)].slice(-MAX_LOGS);
}

/** The public shape: the spec's status fields first, internals dropped. */
export function toWire(task: StoredTask): Task {
	const { version: _version, owner_node: _owner, ...wire } = task;
	return wire;
}

const OPEN_STATUSES: TaskStatus[] = ["pending", "retrying", "running"];

/** `Idempotency-Key` scoped to its caller, as an id: the same key gives the same task on every node. */
function idempotentId(sub: string, key: string): string {
	return `task-${createHash("sha256").update(`${sub}\n${key}`).digest("hex").slice(0, 32)}`;
}

const TasksService: TypedServiceSchema<TasksThis> = {
	name: "tasks",
	mixins: [
		storageMixin({
			name: "tasks",
			idField: "task_id",
			queryable: {
				status: "string", pipeline_id: "string", run_id: "string", assigned_agent: "string",
				priority: "string", created_at: "string", version: "number", owner_node: "string"
			},
			indexes: [["status", "created_at"], ["pipeline_id", "created_at"], ["assigned_agent", "status"], ["run_id"], ["priority", "created_at"], ["owner_node", "status"]]
		})
	],

	actions: {
		create: {
			params: {
				pipeline_id: { type: "string", optional: true, min: 1 },
				run_id: { type: "string", optional: true, min: 1 },
				stage: { type: "number", integer: true, min: 0, optional: true },
				type: { type: "string", min: 1, max: 100 },
				payload: { type: "object", optional: true },
				priority: { type: "enum", values: [...PRIORITIES], optional: true },
				timeout: { type: "number", positive: true, max: 7 * 24 * 3600, optional: true },
				retry_count: { type: "number", integer: true, min: 0, max: 100, optional: true },
				required_capabilities: { type: "array", items: { type: "string", min: 1 }, optional: true, max: 50 },
				$$strict: "remove"
			},
			async handler(this: TasksThis, ctx: Context<TaskSubmission & { run_id?: string }, Meta>): Promise<Task> {
				const p = ctx.params;
				const key = ctx.meta.idempotencyKey;
				const taskId = key ? idempotentId(ctx.meta.user?.sub ?? "anonymous", key) : `task-${randomUUID()}`;
				const now = new Date().toISOString();
				const task: StoredTask = {
					task_id: taskId,
					pipeline_id: p.pipeline_id ?? null,
					run_id: p.run_id ?? null,
					stage: p.stage ?? null,
					type: p.type,
					payload: p.payload ?? {},
					priority: p.priority ?? "medium",
					timeout: p.timeout ?? this.config.taskTimeoutSec,
					retry_count: p.retry_count ?? 0,
					required_capabilities: [...new Set(p.required_capabilities ?? [])],
					status: "pending",
					progress: 0,
					assigned_agent: null,
					attempt: 0,
					result: null,
					error: null,
					logs: [logEntry("info", "Task submitted")],
					idempotency_key: key ?? null,
					created_at: now,
					started_at: null,
					updated_at: now,
					finished_at: null,
					next_attempt_at: null,
					version: 1,
					owner_node: this.broker.nodeID
				};
				try {
					await this.store.insert(task);
				} catch (err) {
					if (!(err instanceof DuplicateKeyError)) throw err;
					// The same Idempotency-Key again: answer with the task it made.
					return toWire(await this.load(taskId));
				}
				this.track(task);
				this.announce(task);
				this.scheduleDispatch();
				return toWire(task);
			}
		},

		get: {
			params: { id: "string" },
			async handler(this: TasksThis, ctx: Context<{ id: string }>) {
				return toWire(this.live.get(ctx.params.id) ?? (await this.load(ctx.params.id)));
			}
		},

		list: {
			params: {
				status: { type: "enum", values: [...TASK_STATUSES], optional: true },
				pipeline_id: { type: "string", optional: true },
				run_id: { type: "string", optional: true },
				agent_id: { type: "string", optional: true },
				limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true }
			},
			async handler(this: TasksThis, ctx: Context<{ status?: TaskStatus; pipeline_id?: string; run_id?: string; agent_id?: string; limit: number; offset: number }>) {
				const { status, pipeline_id, run_id, agent_id, limit, offset } = ctx.params;
				const filter: Filter = {};
				if (status) filter.status = status;
				if (pipeline_id) filter.pipeline_id = pipeline_id;
				if (run_id) filter.run_id = run_id;
				if (agent_id) filter.assigned_agent = agent_id;
				const [tasks, total] = await Promise.all([
					this.store.find({ filter, sort: [["created_at", -1]], limit, offset }),
					this.store.count(filter)
				]);
				return { tasks: tasks.map(toWire), total, limit, offset };
			}
		},

		cancel: {
			params: { id: "string" },
			async handler(this: TasksThis, ctx: Context<{ id: string }, Meta>) {
				const owner = await this.ownerCall<Task>(ctx);
				if (owner.forwarded) return owner.result;
				const task = await this.mutate(ctx.params.id, t => ({
					status: "cancelled",
					finished_at: new Date().toISOString(),
					logs: withLog(t, "warn", "Task cancelled")
				}));
				return toWire(task);
			}
		},

		progress: {
			params: {
				id: "string",
				progress: { type: "number", min: 0, max: 1 },
				message: { type: "string", optional: true, max: 2000 }
			},
			async handler(this: TasksThis, ctx: Context<{ id: string; progress: number; message?: string }, Meta>) {
				const { id, progress, message } = ctx.params;
				const owner = await this.ownerCall<unknown>(ctx);
				if (owner.forwarded) return owner.result;
				const task = await this.mutate(id, t => {
					if (ctx.meta.user && !mayReportOnTask(ctx.meta.user, id, t.assigned_agent)) throw forbidden("Not this agent's task");
					if (t.status !== "running") throw conflict(`Task is ${t.status}, not running`, { status: t.status });
					return { progress, ...(message ? { logs: withLog(t, "info", message) } : {}) };
				});
				return { task_id: task.task_id, status: task.status, progress: task.progress };
			}
		},

		complete: {
			params: { id: "string", result: { type: "any", optional: true } },
			async handler(this: TasksThis, ctx: Context<{ id: string; result?: unknown }, Meta>) {
				const owner = await this.ownerCall<Task>(ctx);
				if (owner.forwarded) return owner.result;
				const current = this.live.get(ctx.params.id) ?? (await this.load(ctx.params.id));
				if (ctx.meta.user && !mayReportOnTask(ctx.meta.user, current.task_id, current.assigned_agent)) throw forbidden("Not this agent's task");
				const task = await this.finishAttempt(current.task_id, current.attempt, { result: ctx.params.result ?? null });
				if (!task) throw conflict(`Task is ${current.status}, not running`, { status: current.status });
				return toWire(task);
			}
		},

		fail: {
			params: { id: "string", error: { type: "string", min: 1, max: 10_000 }, retryable: { type: "boolean", optional: true } },
			async handler(this: TasksThis, ctx: Context<{ id: string; error: string; retryable?: boolean }, Meta>) {
				const owner = await this.ownerCall<Task>(ctx);
				if (owner.forwarded) return owner.result;
				const current = this.live.get(ctx.params.id) ?? (await this.load(ctx.params.id));
				if (ctx.meta.user && !mayReportOnTask(ctx.meta.user, current.task_id, current.assigned_agent)) throw forbidden("Not this agent's task");
				const failure: TaskFailure = { code: "EXECUTION_ERROR", message: ctx.params.error, retryable: ctx.params.retryable ?? true };
				const task = await this.finishAttempt(current.task_id, current.attempt, { failure });
				if (!task) throw conflict(`Task is ${current.status}, not running`, { status: current.status });
				return toWire(task);
			}
		}
	},

	events: {
		/** A core node died: the survivors race (compare-and-set) to adopt its open tasks. */
		async "$node.disconnected"(this: TasksThis, ctx: Context<{ node: { id: string } }>) {
			const dead = ctx.params.node.id;
			await this.adoptOrphans(owner => owner === dead);
		},

		async [EVENTS.agentUpdated](this: TasksThis, ctx: Context<AgentUpdatedEvent>) {
			const { agent, removed } = ctx.params;
			if (removed) this.agents.delete(agent.id);
			else this.agents.set(agent.id, agent);
			if (removed || agent.status === "offline") await this.requeueFromAgent(agent.id, removed ? "was deregistered" : "went offline");
			this.scheduleDispatch();
		}
	},

	methods: {
		async load(this: TasksThis, id: string) {
			const task = await this.store.get(id);
			if (!task) throw notFound("Task", id);
			return task;
		},

		/**
		 * The one way a task changes. `change` sees the current task and returns the fields to set
		 * (or null for no change); a status change is checked against the state machine.
		 */
		mutate(this: TasksThis, id: string, change: (task: StoredTask) => Change | null) {
			return this.mailbox.run(id, async () => {
				for (let tries = 0; ; tries++) {
					const current = this.live.get(id) ?? (await this.load(id));
					const fields = change(current);
					if (!fields) return current;
					if (fields.status !== undefined)
						try {
							assertTransition(current.status, fields.status);
						} catch (err) {
							if (err instanceof IllegalTransitionError) throw conflict(err.message, { from: err.from, to: err.to });
							throw err;
						}
					const next: StoredTask = { ...current, ...fields, updated_at: new Date().toISOString(), version: current.version + 1 };
					const { task_id: _id, ...changes } = { ...fields, updated_at: next.updated_at, version: next.version };
					if (await this.store.updateIf(id, { version: current.version }, changes)) {
						this.track(next);
						if (fields.status !== undefined || fields.progress !== undefined) this.announce(next);
						return next;
					}
					// Another node changed it first: forget our copy and decide again on the stored one.
					this.live.delete(id);
					if (tries >= 5) throw conflict("Task is being changed concurrently; try again");
				}
			});
		},

		track(this: TasksThis, task: StoredTask) {
			if (isTerminal(task.status)) {
				this.live.delete(task.task_id);
				clearTimeout(this.attemptTimers.get(task.task_id));
				this.attemptTimers.delete(task.task_id);
				clearTimeout(this.backoffTimers.get(task.task_id));
				this.backoffTimers.delete(task.task_id);
			} else this.live.set(task.task_id, task);
		},

		announce(this: TasksThis, task: StoredTask) {
			this.broker.broadcast(EVENTS.taskUpdated, { task: toWire(task) });
		},

		announceFailure(this: TasksThis, task: StoredTask, failure: TaskFailure) {
			this.broker.broadcast(EVENTS.error, {
					task_id: task.task_id,
					pipeline_id: task.pipeline_id ?? undefined,
					run_id: task.run_id ?? undefined,
					agent_id: task.assigned_agent ?? undefined,
					error: task.status === "failed" ? "Task execution failed" : "Task attempt failed",
				details: { code: failure.code, message: failure.message }
			});
		},

		/** Coalesces requests: one dispatch pass at a time, and one more after it if anything asked meanwhile. */
		scheduleDispatch(this: TasksThis) {
			if (this.dispatchScheduled) return;
			this.dispatchScheduled = true;
			setImmediate(() => {
				this.dispatchScheduled = false;
				const pass = this.dispatching.then(() => this.dispatch()).catch(err => this.logger.error({ err }, "dispatch failed"));
				this.dispatching = pass;
			});
		},

		async dispatch(this: TasksThis) {
			const now = Date.now();
			const queued: DispatchTask[] = [];
			let runningTotal = 0;
			for (const t of this.live.values()) {
				if (t.status === "running") runningTotal++;
				else if (t.status === "pending" || t.status === "retrying")
					queued.push({
						task_id: t.task_id,
						type: t.type,
						priority: t.priority,
						required_capabilities: t.required_capabilities,
						created_at: t.created_at,
						not_before: t.next_attempt_at ? Date.parse(t.next_attempt_at) : null
					});
			}
			if (!queued.length) return;
			const running = this.runningByAgent();
			const agents: DispatchAgent[] = [...this.agents.values()].filter(a => acceptsWork(a.status)).map(a => ({
				...a,
				// Ours counted live; other core nodes' as they last reported them.
				running_tasks: (running.get(a.id) ?? 0) + a.running_tasks - (a.running_by_node?.[this.broker.nodeID] ?? 0),
				skip: this.breaker.isOpen(a.id, now)
			}));
			const plan = planDispatch({ tasks: queued, agents, runningTotal, maxConcurrentTasks: this.config.maxConcurrentTasks, now });
			// Claim first (so the next pass sees these as running), deliver without waiting.
			await Promise.all(plan.map(a => this.start(a.task_id, a.agent_id)));
		},

		runningByAgent(this: TasksThis) {
			const counts = new Map<string, number>();
			for (const t of this.live.values())
				if (t.status === "running" && t.assigned_agent) counts.set(t.assigned_agent, (counts.get(t.assigned_agent) ?? 0) + 1);
			return counts;
		},

		async start(this: TasksThis, taskId: string, agentId: string) {
			const agent = this.agents.get(agentId);
			if (!agent) return;
			let task: StoredTask;
			// Only the call whose change was committed delivers; a concurrent claim of the same task sees `running`.
			let claimed = false;
			try {
				task = await this.mutate(taskId, t =>
					(claimed = t.status === "pending" || t.status === "retrying")
						? {
								status: "running",
								assigned_agent: agentId,
								attempt: t.attempt + 1,
								progress: 0,
								started_at: new Date().toISOString(),
								next_attempt_at: null,
								logs: withLog(t, "info", `Attempt ${t.attempt + 1} started on agent ${agent.name} (${agentId})`)
							}
						: null
				);
			} catch (err) {
				this.logger.debug({ err, taskId }, "claim failed");
				return;
			}
			if (!claimed) return;
			this.markAgentDirty(agentId);
			this.armAttemptTimer(task);
			void this.deliver(task, agent);
		},

		async deliver(this: TasksThis, task: StoredTask, agent: Agent) {
			const attempt = task.attempt;
			if (agent.node_id && agent.service) {
				// A Moleculer agent: a direct call to its node; the return value is the result.
				try {
					const result = await this.broker.call(
						`${agent.service}.execute`,
						{ task_id: task.task_id, type: task.type, payload: task.payload, timeout: task.timeout, attempt },
						{ nodeID: agent.node_id, timeout: task.timeout * 1000 + 1000, retries: 0, meta: { taskId: task.task_id } }
					);
					await this.finishAttempt(task.task_id, attempt, { result });
				} catch (err) {
					const e = err as Error & { type?: string };
					if (NEVER_DELIVERED_ERRORS.has(e.name) || e.name === "RequestRejectedError") {
						// The agent's node is gone or not yet announced: not the task's fault, so no retry is spent.
						// A task that never reached the agent does not count the attempt either.
						await this.requeue(task.task_id, agent.id, `was unreachable (${e.message})`, UNREACHABLE_RETRY_MS, NEVER_DELIVERED_ERRORS.has(e.name));
						return;
					}
					await this.finishAttempt(task.task_id, attempt, {
						failure: {
							code: e.name === "RequestTimeoutError" ? "TIMEOUT" : "EXECUTION_ERROR",
							message: e.message,
							retryable: e.type !== "NON_RETRYABLE"
						}
					});
				}
				return;
			}
			const base = `${this.callbackBase()}/api/v1/tasks/${task.task_id}`;
			const delivery: TaskDelivery = {
				task_id: task.task_id,
				type: task.type,
				payload: task.payload,
				timeout: task.timeout,
				attempt,
				callback_token: mintToken(this.config.jwtSecret!, {
					sub: `agent:${agent.id}`,
					roles: ["agent"],
					agent_id: agent.id,
					task_id: task.task_id,
					expiresInSec: this.config.callbackTokenTtlSec || Math.ceil(task.timeout) + 300
				}),
				callbacks: { progress: `${base}/progress`, complete: `${base}/complete`, fail: `${base}/fail` }
			};
			try {
				if (!agent.endpoints.task) throw new Error("agent has no task endpoint");
				const res = await fetch(agent.endpoints.task, {
					method: "POST",
					headers: { "Content-Type": "application/json" },
					body: JSON.stringify(delivery),
					signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS)
				});
				await res.body?.cancel();
				if (!res.ok) throw new Error(`agent answered ${res.status}`);
				this.breaker.succeeded(agent.id);
			} catch (err) {
				if (this.breaker.failed(agent.id)) this.logger.warn({ agent: agent.id }, "delivery breaker opened for agent");
				await this.finishAttempt(task.task_id, attempt, {
					failure: { code: "DELIVERY_FAILED", message: `Delivery to ${agent.endpoints.task} failed: ${(err as Error).message}`, retryable: true }
				});
			}
		},

		/** Ends attempt `attempt` of a running task; null when that attempt is no longer the current one. */
		async finishAttempt(this: TasksThis, id: string, attempt: number, outcome: { result: unknown } | { failure: TaskFailure }) {
			let failure: TaskFailure | undefined;
			let agentId: string | null = null;
			let task: StoredTask;
			try {
				task = await this.mutate(id, t => {
					if (t.status !== "running" || t.attempt !== attempt) return null;
					agentId = t.assigned_agent;
					const now = new Date().toISOString();
					if ("result" in outcome)
						return { status: "completed", result: outcome.result, progress: 1, finished_at: now, logs: withLog(t, "info", `Attempt ${attempt} completed`) };
					failure = outcome.failure;
					const next = afterAttemptFailure(t, failure.retryable);
					if (next === "failed")
						return { status: "failed", error: failure.message, finished_at: now, logs: withLog(t, "error", `Attempt ${attempt} failed: ${failure.message}; giving up`) };
					const delay = retryDelayMs(attempt, { baseMs: this.config.retryBaseDelayMs, maxMs: this.config.retryMaxDelayMs });
					return {
						status: "retrying",
						error: failure.message,
						next_attempt_at: new Date(Date.now() + delay).toISOString(),
						logs: withLog(t, "warn", `Attempt ${attempt} failed: ${failure.message}; retrying in ${delay} ms`)
					};
				});
			} catch (err) {
				this.logger.warn({ err, id }, "could not finish attempt");
				return null;
			}
			if (!agentId) return null;
			clearTimeout(this.attemptTimers.get(id));
			this.attemptTimers.delete(id);
			this.markAgentDirty(agentId);
			if (failure) this.announceFailure(task, failure);
			if (task.status === "retrying" && task.next_attempt_at) {
				const timer = setTimeout(() => {
					this.backoffTimers.delete(id);
					this.scheduleDispatch();
				}, Math.max(0, Date.parse(task.next_attempt_at) - Date.now()));
				timer.unref();
				this.backoffTimers.set(id, timer);
			}
			this.scheduleDispatch();
			return task;
		},

		/** At-least-once: tasks running on a lost agent go back to the queue (the attempt counter shows it). */
		async requeueFromAgent(this: TasksThis, agentId: string, reason: string) {
			const running = await this.store.find({ filter: { assigned_agent: agentId, status: "running" } });
			for (const t of running) await this.requeue(t.task_id, agentId, reason);
		},

		async requeue(this: TasksThis, id: string, agentId: string, reason: string, delayMs = 0, undoAttempt = false) {
			const notBefore = delayMs ? new Date(Date.now() + delayMs).toISOString() : null;
			await this.mutate(id, cur =>
				cur.status === "running" && cur.assigned_agent === agentId
					? {
							status: "pending",
							assigned_agent: null,
							progress: 0,
							next_attempt_at: notBefore,
							...(undoAttempt ? { attempt: cur.attempt - 1 } : {}),
							logs: withLog(cur, "warn", `Agent ${agentId} ${reason}; re-queued after attempt ${cur.attempt}`)
						}
					: null
			).catch(err => this.logger.warn({ err, task: id }, "re-queue failed"));
			clearTimeout(this.attemptTimers.get(id));
			this.attemptTimers.delete(id);
			this.markAgentDirty(agentId);
			if (delayMs) setTimeout(() => this.scheduleDispatch(), delayMs).unref();
			this.scheduleDispatch();
		},

		/**
		 * Single writer across nodes: a call about a task runs on the node that owns it. Here we either
		 * forward it there, or (owner gone) adopt the task, or go on locally.
		 */
		async ownerCall<T>(this: TasksThis, ctx: Context<{ id: string }, Meta>) {
			if (this.live.has(ctx.params.id) || ctx.meta.forwarded) return { forwarded: false as const };
			const task = await this.load(ctx.params.id);
			if (task.owner_node === this.broker.nodeID || isTerminal(task.status)) return { forwarded: false as const };
			if (this.nodeAlive(task.owner_node)) {
				const result = await ctx.call<T, object>(ctx.action!.name!, ctx.params, { nodeID: task.owner_node, meta: { forwarded: true } });
				return { forwarded: true as const, result };
			}
			await this.adopt(task);
			return { forwarded: false as const };
		},

		nodeAlive(this: TasksThis, nodeId: string) {
			const node = this.broker.registry.nodes.get(nodeId);
			return Boolean(node?.available && node.services.some(s => s.name === "tasks"));
		},

		/** Takes over a task whose owner is gone; null when another node adopted it first. */
		async adopt(this: TasksThis, task: StoredTask) {
			const adopted = await this.mailbox.run(task.task_id, async () => {
				const fields = { owner_node: this.broker.nodeID, version: task.version + 1, updated_at: new Date().toISOString() };
				const won = await this.store.updateIf(task.task_id, { owner_node: task.owner_node, version: task.version }, fields);
				return won ? { ...task, ...fields } : null;
			});
			if (adopted) {
				this.logger.info({ task: task.task_id, from: task.owner_node }, "adopted task");
				await this.resume(adopted);
			}
			return adopted;
		},

		async adoptOrphans(this: TasksThis, isOrphan: (ownerNode: string) => boolean) {
			const open = await this.store.find({ filter: { status: { $in: OPEN_STATUSES } } });
			for (const task of open) if (task.owner_node !== this.broker.nodeID && isOrphan(task.owner_node)) await this.adopt(task);
			this.scheduleDispatch();
		},

		/** Picks up an owned open task whose in-memory state was lost (restart, adoption). */
		async resume(this: TasksThis, t: StoredTask) {
			this.track(t);
			if (t.status !== "running") return;
			const agent = t.assigned_agent ? this.agents.get(t.assigned_agent) : undefined;
			// A Moleculer call in flight died with its caller; an HTTP agent may still call back.
			if (!agent || agent.status === "offline" || agent.node_id) {
				await this.requeue(t.task_id, t.assigned_agent ?? "", "lost its dispatcher");
				return;
			}
			this.armAttemptTimer(t);
		},

		/** Bounds the running attempt by the task's `timeout`, counted from when it started. */
		armAttemptTimer(this: TasksThis, task: StoredTask) {
			const { task_id, attempt, timeout } = task;
			const remaining = Date.parse(task.started_at ?? task.updated_at) + timeout * 1000 - Date.now();
			const timer = setTimeout(
				() => void this.finishAttempt(task_id, attempt, { failure: { code: "TIMEOUT", message: `Attempt ${attempt} timed out after ${timeout} s`, retryable: true } }),
				Math.max(0, remaining)
			);
			timer.unref();
			this.attemptTimers.set(task_id, timer);
		},

		markAgentDirty(this: TasksThis, agentId: string) {
			this.dirtyAgents.add(agentId);
		},

		callbackBase(this: TasksThis) {
			if (this.config.publicUrl) return this.config.publicUrl;
			return `http://127.0.0.1:${localGatewayPort(this.broker) ?? this.config.serverPort}`;
		}
	},

	created(this: TasksThis) {
		this.config = appConfig(this.broker);
		this.mailbox = new KeyedQueue();
		this.live = new Map();
		this.agents = new Map();
		this.attemptTimers = new Map();
		this.backoffTimers = new Map();
		this.breaker = new DeliveryBreaker({ threshold: 3, openMs: 30_000 });
		this.dispatchScheduled = false;
		this.dispatching = Promise.resolve();
		this.dirtyAgents = new Set();
	},

	async started(this: TasksThis) {
		if (!this.config.publicUrl && !localGatewayServer(this.broker))
			this.logger.warn("PUBLIC_URL is not set and no gateway runs on this node: HTTP agents will be told to call back to 127.0.0.1");
		// Agents' running counts reach the registry in batches: one write per agent per tick, not per task.
		this.loadFlush = setInterval(() => {
			if (!this.dirtyAgents.size) return;
			const running = this.runningByAgent();
			for (const agentId of this.dirtyAgents) {
				if (!this.agents.has(agentId)) continue;
				void this.broker.call("agents.setLoad", { id: agentId, node_id: this.broker.nodeID, running_tasks: running.get(agentId) ?? 0 }).catch(() => undefined);
			}
			this.dirtyAgents.clear();
		}, 250);
		this.loadFlush.unref();

		// Resume: our own open tasks, and those of owners that are no longer alive (after a restart, our
		// node id may be new). With a transporter, first give the other nodes time to be discovered.
		void (async () => {
			await this.broker.waitForServices(["agents"]);
			const { agents } = await this.broker.call<{ agents: Agent[] }, Record<string, never>>("agents.list", {});
			for (const a of agents) this.agents.set(a.id, a);
			const mine = await this.store.find({ filter: { status: { $in: OPEN_STATUSES }, owner_node: this.broker.nodeID } });
			for (const t of mine) await this.resume(t);
			if (this.config.transporter) await new Promise(r => setTimeout(r, this.config.broker.nodeHeartbeatTimeoutSec * 1000).unref());
			await this.adoptOrphans(owner => !this.nodeAlive(owner));
		})().catch(err => this.logger.error({ err }, "resume failed"));
	},

	stopped(this: TasksThis) {
		clearInterval(this.loadFlush);
		for (const timer of [...this.attemptTimers.values(), ...this.backoffTimers.values()]) clearTimeout(timer);
	}
};

export default TasksService;
