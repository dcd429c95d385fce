/**
 * Tasks: one actor per task, and this node's dispatcher.
 *
 * Every change is an event decided by `decideTask` (src/domain/tasks/decide.ts) on the current
 * record and committed by the entity actor (mailbox + compare-and-set); this service then executes
 * the decision's effects: announce, deliver, arm or clear timers, report agent load, dispatch.
 * An open task is driven by the core node that owns it (src/runtime/ownership.ts): calls about it
 * are forwarded there, and survivors adopt the open tasks of a node that died. Finished tasks past
 * TASK_RETENTION_DAYS are swept (mixins/retention.mixin.ts).
 */
import type { Context, Service } from "moleculer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { taskOperationsMixin } from "../mixins/task-operations.mixin";
import { quotasMixin, type QuotasThis } from "../mixins/quotas.mixin";
import { taskRetentionMixin } from "../mixins/retention.mixin";
import { taskErrorEvent } from "../src/domain/tasks/events";
import { decideTask, newTask, type TaskContext, type TaskEffect, type TaskEvent, type TaskFailure } from "../src/domain/tasks/decide";
import { OPEN_STATUSES } from "../src/domain/tasks/state-machine";
import { appConfig } from "../src/platform/app-config";
import type { AppConfig } from "../src/platform/config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { unauthorized } from "../src/platform/errors";
import { isSystem, principalOf } from "../src/platform/trust";
import { isAgentOnly } from "../src/domain/access";
import { localGatewayServer } from "../src/gateway/local-gateway";
import { allAgents } from "../src/runtime/agent-directory";
import { eventAfterDelivery, type DeliveryOutcome } from "../src/runtime/delivery";
import type { Outcome } from "../src/runtime/entity-actor";
import { idempotentId, newId } from "../src/runtime/ids";
import { TaskRuntime, taskToWire as toWire, type StoredTask } from "../src/runtime/task-runtime";
import { COLLECTIONS } from "../src/storage/collections";
import { insertNew } from "../src/storage/entity-store";
import { EVENTS, PRIORITIES, type AgentUpdatedEvent, type Task, type TaskSubmission } from "../src/types";

/** `taskId`, `createdBy` and `managers` come from the pipeline engine only (a trusted node's own call). */
type Meta = { idempotencyKey?: string; forwarded?: boolean; taskId?: string; createdBy?: string | null; managers?: string[] };
type Applied = Outcome<StoredTask, TaskEffect>;

interface TasksThis extends Service, StorageThis<StoredTask>, QuotasThis {
	config: AppConfig;
	runtime: TaskRuntime;
	context(): TaskContext;
	apply(id: string, event: TaskEvent): Promise<Applied>;
	applyQuietly(id: string, event: TaskEvent): Promise<void>;
	onCall(ctx: Context<{ id: string }, Meta>, event: TaskEvent): Promise<Task>;
	openTasksOf(subject: string): Promise<number>;
	execute(applied: Applied): void;
	deliver(task: StoredTask, agentId: string): Promise<void>;
	resume(task: StoredTask): Promise<void>;
	requeueFromAgent(agentId: string, reason: string): Promise<void>;
}

const TasksService: TypedServiceSchema<TasksThis> = {
	name: "tasks",
	mixins: [storageMixin(COLLECTIONS.tasks), taskOperationsMixin, quotasMixin, taskRetentionMixin],

	actions: {
		create: {
			access: { level: "operate" },
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
				const key = ctx.meta.idempotencyKey;
				const principal = principalOf(ctx);
				// Only the engine names its stage tasks and who they belong to (the run's executor, its pipeline's managers).
				const engine = isSystem(principal) ? ctx.meta : {};
				const taskId = engine.taskId || (key ? idempotentId("task", [principal?.sub ?? "anonymous"], key) : newId("task"));
				const { task, effects } = newTask({
					...ctx.params,
					task_id: taskId,
					created_by: engine.taskId ? (engine.createdBy ?? null) : (principal?.sub ?? null),
					managers: engine.managers,
					timeout: ctx.params.timeout ?? this.config.taskTimeoutSec,
					idempotency_key: key ?? null
				}, new Date());
				const stored: StoredTask = { ...task, version: 1, owner_node: this.broker.nodeID };
				// The same key again answers with the task it made; else the caller's quotas admit it (stage tasks count, never refused).
				const made = !(key && (await this.store.get(taskId))) && (await this.quotas.admit(ctx, subject => this.openTasksOf(subject), () => insertNew(this.store, stored)));
				if (!made) return toWire(await this.runtime.actor.load(taskId));
				this.runtime.live.set(taskId, stored);
				this.execute({ entity: stored, previous: stored, changed: true, effects });
				return toWire(stored);
			}
		},

		get: {
			access: { level: "read" },
			params: { id: "string" },
			async handler(this: TasksThis, ctx: Context<{ id: string }>) {
				return toWire(await this.runtime.actor.load(ctx.params.id));
			}
		},

		cancel: {
			access: { level: "operate" },
			params: { id: "string" },
			async handler(this: TasksThis, ctx: Context<{ id: string }, Meta>) {
				return this.onCall(ctx, { type: "cancel", by: principalOf(ctx) ?? undefined });
			}
		},

		progress: {
			access: { level: "operate", agent: true },
			params: { id: "string", progress: { type: "number", min: 0, max: 1 }, message: { type: "string", optional: true, max: 2000 } },
			async handler(this: TasksThis, ctx: Context<{ id: string; progress: number; message?: string }, Meta>) {
				const { progress, message } = ctx.params;
				const task = await this.onCall(ctx, { type: "progress", progress, message, by: principalOf(ctx) ?? undefined });
				return { task_id: task.task_id, status: task.status, progress: task.progress };
			}
		},

		complete: {
			access: { level: "operate", agent: true },
			params: { id: "string", result: { type: "any", optional: true } },
			async handler(this: TasksThis, ctx: Context<{ id: string; result?: unknown }, Meta>) {
				return this.onCall(ctx, { type: "complete", result: ctx.params.result ?? null, by: principalOf(ctx) ?? undefined });
			}
		},

		fail: {
			access: { level: "operate", agent: true },
			params: { id: "string", error: { type: "string", min: 1, max: 10_000 }, retryable: { type: "boolean", optional: true } },
			async handler(this: TasksThis, ctx: Context<{ id: string; error: string; retryable?: boolean }, Meta>) {
				const failure: TaskFailure = { code: "EXECUTION_ERROR", message: ctx.params.error, retryable: ctx.params.retryable ?? true };
				return this.onCall(ctx, { type: "fail", failure, by: principalOf(ctx) ?? undefined });
			}
		}
	},

	events: {
		/** A core node died: the survivors race (compare-and-set) to adopt its open tasks. */
		async "$node.disconnected"(this: TasksThis, ctx: Context<{ node: { id: string } }>) {
			const dead = ctx.params.node.id;
			await this.runtime.ownership.adoptOrphans(await this.store.find({ filter: { status: { $in: OPEN_STATUSES }, owner_node: dead } }), owner => owner === dead);
			this.runtime.dispatcher.schedule();
		},

		async [EVENTS.agentUpdated](this: TasksThis, ctx: Context<AgentUpdatedEvent>) {
			const { agent, removed } = ctx.params;
			if (removed) this.runtime.dispatcher.agents.delete(agent.id);
			else this.runtime.dispatcher.agents.set(agent.id, agent);
			if (removed || agent.status === "offline") await this.requeueFromAgent(agent.id, removed ? "was deregistered" : "went offline");
			this.runtime.dispatcher.schedule();
		}
	},

	methods: {
		context(this: TasksThis): TaskContext {
			return { now: new Date(), random: Math.random, retry: { baseMs: this.config.retryBaseDelayMs, maxMs: this.config.retryMaxDelayMs } };
		},

		/** A subject's pending, retrying and running tasks: what the open-task quota counts. */
		openTasksOf(this: TasksThis, subject: string): Promise<number> {
			return this.store.count({ created_by: subject, status: { $in: OPEN_STATUSES } });
		},

		async apply(this: TasksThis, id: string, event: TaskEvent) {
			const applied = await this.runtime.actor.change(id, task => decideTask(task, event, this.context()));
			this.execute(applied);
			return applied;
		},

		/** For the runtime's own events (timers, deliveries, lost agents): a failure is logged, not thrown. */
		async applyQuietly(this: TasksThis, id: string, event: TaskEvent) {
			await this.apply(id, event).catch(err => this.logger.warn({ err, task: id, event: event.type }, "task event not applied"));
		},

		/** A call about one task: decided on the node that owns it. An agent's token must be of its current registration. */
		async onCall(this: TasksThis, ctx: Context<{ id: string }, Meta>, event: TaskEvent) {
			const by = principalOf(ctx);
			if (by && isAgentOnly(by) && !(await this.runtime.isCurrentAgent(by)))
				throw unauthorized("This agent token belongs to a removed or earlier registration");
			const routed = await this.runtime.ownership.route<Task>(ctx, this.runtime.live.has(ctx.params.id));
			if (routed.forwarded) return routed.result;
			return toWire((await this.apply(ctx.params.id, event)).entity);
		},

		execute(this: TasksThis, { entity: task, effects }: Applied) {
			const id = task.task_id;
			for (const effect of effects)
				switch (effect.type) {
					case "announce":
						this.broker.broadcast(EVENTS.taskUpdated, { task: toWire(task) });
						break;
					case "announce-failure":
						this.broker.broadcast(EVENTS.error, taskErrorEvent(task, effect.failure));
						break;
					case "deliver":
						void this.deliver(task, effect.agentId);
						break;
					case "arm-attempt-timer":
						this.runtime.attemptTimers.set(id, effect.at, () => void this.applyQuietly(id, { type: "timeout", attempt: effect.attempt }));
						break;
					case "arm-retry-timer":
						this.runtime.retryTimers.set(id, effect.at, () => void this.applyQuietly(id, { type: "retry-due" }));
						break;
					case "clear-attempt-timer":
						this.runtime.attemptTimers.clear(id);
						break;
					case "clear-timers":
						this.runtime.attemptTimers.clear(id);
						this.runtime.retryTimers.clear(id);
						break;
					case "agent-load":
						this.runtime.dispatcher.markLoadChanged(effect.agentId);
						break;
					case "dispatch":
						this.runtime.dispatcher.schedule();
						break;
				}
		},

		/** Hands the claimed attempt to the agent's transport and turns what it says into the task's next event. */
		async deliver(this: TasksThis, task: StoredTask, agentId: string) {
			const agent = this.runtime.dispatcher.agents.get(agentId);
			const outcome: DeliveryOutcome = agent
				? await this.runtime.deliveries.for(agent).deliver(task, agent)
				: { kind: "unreachable", reason: "it is no longer registered", delivered: false };
			const next = eventAfterDelivery(outcome, agentId, task.attempt);
			if (next) await this.applyQuietly(task.task_id, next);
		},

		/** Takes up an owned open task whose in-memory state was lost (restart, adoption). */
		async resume(this: TasksThis, task: StoredTask) {
			this.runtime.live.set(task.task_id, task);
			const agent = task.assigned_agent ? this.runtime.dispatcher.agents.get(task.assigned_agent) : undefined;
			// Only an HTTP agent that is still around can report on an attempt this node did not start.
			const agentCanReport = Boolean(agent && agent.status !== "offline" && !agent.node_id);
			await this.applyQuietly(task.task_id, { type: "start", agentCanReport });
		},

		/** At-least-once: tasks running on a lost agent go back to the queue (the attempt counter shows it). */
		async requeueFromAgent(this: TasksThis, agentId: string, reason: string) {
			const running = await this.store.find({ filter: { assigned_agent: agentId, status: "running" } });
			for (const t of running) await this.applyQuietly(t.task_id, { type: "agent-lost", agentId, reason });
		}
	},

	created(this: TasksThis) {
		this.config = appConfig(this.broker);
		this.runtime = new TaskRuntime({
			broker: this.broker,
			config: this.config,
			logger: this.logger,
			store: () => this.store,
			claim: (taskId, agent) => this.applyQuietly(taskId, { type: "claim", agent: { id: agent.id, name: agent.name } }),
			resume: task => this.resume(task)
		});
	},

	async started(this: TasksThis) {
		if (!this.config.publicUrl && !localGatewayServer(this.broker))
			this.logger.warn("PUBLIC_URL is not set and no gateway runs on this node: HTTP agents will be told to call back to 127.0.0.1");
		this.runtime.start();
		// Resume: our own open tasks, and those of owners that are no longer alive (after a restart, our
		// node id may be new). With a transporter, first give the other nodes time to be discovered.
		void (async () => {
			await this.broker.waitForServices(["agents"]);
			for (const a of await allAgents(this.broker)) this.runtime.dispatcher.agents.set(a.id, a);
			const mine = await this.store.find({ filter: { status: { $in: OPEN_STATUSES }, owner_node: this.broker.nodeID } });
			// Not those this node has taken up since it started: it drives them already, and its copy is newer.
			for (const t of mine) if (!this.runtime.live.has(t.task_id)) await this.resume(t);
			if (this.config.transporter) await new Promise(r => setTimeout(r, this.config.broker.nodeHeartbeatTimeoutSec * 1000).unref());
			const open = await this.store.find({ filter: { status: { $in: OPEN_STATUSES } } });
			await this.runtime.ownership.adoptOrphans(open, owner => !this.runtime.ownership.nodeAlive(owner));
			this.runtime.dispatcher.schedule();
		})().catch(err => this.logger.error({ err }, "resume failed"));
	},

	stopped(this: TasksThis) {
		this.runtime.stop();
	}
};

export default TasksService;
