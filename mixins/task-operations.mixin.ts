/**
 * Queries and operators' tools on top of the task actors, for the tasks service: listing, why a queued task waits
 * (`explain`, the dispatch policy's own rules applied to this node's view), a retry of a failed or
 * cancelled task, and bulk cancel/retry over a filter with a dry run first. Each change still goes
 * through the one task's own event, on its owner node, with the caller's rights.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { decideTask, type TaskEvent } from "../src/domain/tasks/decide";
import { explainWait, type WaitReport } from "../src/domain/tasks/dispatch";
import type { QueueByCapability } from "../src/platform/metrics/overview";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { principalOf } from "../src/platform/trust";
import { forEachBounded } from "../src/runtime/bounded";
import { asDispatchTask } from "../src/runtime/dispatcher";
import { taskToWire, type StoredTask, type TaskRuntime } from "../src/runtime/task-runtime";
import type { StorageThis } from "./db.mixin";
import type { QuotasThis } from "./quotas.mixin";
import type { Filter } from "../src/storage/entity-store";
import { TASK_STATUSES, type Task, type TaskStatus } from "../src/types";

/** Queued tasks looked at for the per-capability counts (the depth itself is always exact). */
const QUEUE_SCAN_MAX = 50_000;

/** The most tasks one bulk request touches: larger sets are narrowed with filters or repeated. */
export const BULK_MAX = 10_000;
const BULK_CONCURRENCY = 16;

export interface BulkFilter {
	status?: TaskStatus;
	type?: string;
	agent_id?: string;
	pipeline_id?: string;
}

interface OperationsThis extends Service, StorageThis<StoredTask>, QuotasThis {
	runtime: TaskRuntime;
	onCall(ctx: Context<{ id: string }>, event: TaskEvent): Promise<Task>;
	openTasksOf(subject: string): Promise<number>;
}

const schema: TypedServiceSchema<OperationsThis> = {
	name: "tasks",
	actions: {
		list: {
			access: { level: "read" },
			params: {
				status: { type: "enum", values: [...TASK_STATUSES], optional: true },
				type: { type: "string", optional: true, max: 100 },
				pipeline_id: { type: "string", optional: true },
				run_id: { type: "string", optional: true },
				agent_id: { type: "string", optional: true },
				limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true }
			},
			async handler(this: OperationsThis, ctx: Context<{ status?: TaskStatus; type?: string; pipeline_id?: string; run_id?: string; agent_id?: string; limit: number; offset: number }>) {
				const { status, type, pipeline_id, run_id, agent_id, limit, offset } = ctx.params;
				const filter: Filter = {};
				if (status) filter.status = status;
				if (type) filter.type = type;
				if (pipeline_id) filter.pipeline_id = pipeline_id;
				if (run_id) filter.run_id = run_id;
				if (agent_id) filter.assigned_agent = agent_id;
				return this.reads.read(`tasks.list:${JSON.stringify([filter, limit, offset])}`, async () => {
					const [tasks, total] = await Promise.all([this.store.find({ filter, sort: [["created_at", -1]], limit, offset }), this.store.count(filter)]);
					return { tasks: tasks.map(taskToWire), total, limit, offset };
				});
			}
		},

		explain: {
			access: { level: "read" },
			params: { id: "string" },
			async handler(this: OperationsThis, ctx: Context<{ id: string }, { forwarded?: boolean }>): Promise<WaitReport> {
				const { runtime } = this;
				// Only the owner's dispatcher sees the running counts and breakers it decides with.
				const routed = await runtime.ownership.route<WaitReport>(ctx, runtime.live.has(ctx.params.id));
				if (routed.forwarded) return routed.result;
				const task = await runtime.actor.load(ctx.params.id);
				const now = Date.now();
				const running = runtime.dispatcher.runningTotal();
				const max = runtime.dispatcher.maxConcurrentTasks;
				const waiting = task.status === "pending" || task.status === "retrying";
				const agents = runtime.dispatcher.policyAgents(now);
				const verdicts = waiting ? explainWait(asDispatchTask(task), { agents, runningTotal: running, maxConcurrentTasks: max, now }).agents : [];
				const byId = new Map(agents.map(a => [a.id, a]));
				return {
					task_id: task.task_id,
					status: task.status,
					waiting,
					not_before: waiting ? task.next_attempt_at : null,
					cluster: { running, max, full: running >= max },
					agents: verdicts.map(v => ({ ...v, name: byId.get(v.agent_id)?.name ?? v.agent_id, status: byId.get(v.agent_id)?.status ?? "offline" }))
				};
			}
		},

		/** Queued tasks per capability they need (the Overview's capacity matrix). */
		queue: {
			access: { level: "read" },
			async handler(this: OperationsThis): Promise<QueueByCapability> {
				const queued = await this.store.find({ filter: { status: { $in: ["pending", "retrying"] } }, limit: QUEUE_SCAN_MAX });
				const byCapability: Record<string, number> = {};
				for (const task of queued) for (const capability of new Set([task.type, ...task.required_capabilities])) byCapability[capability] = (byCapability[capability] ?? 0) + 1;
				const types = [...new Set(queued.map(task => task.type))];
				return { depth: await this.store.count({ status: { $in: ["pending", "retrying"] } }), by_capability: byCapability, types };
			}
		},

		retry: {
			access: { level: "operate" },
			params: { id: "string" },
			async handler(this: OperationsThis, ctx: Context<{ id: string }>) {
				// A retry opens the task again: the caller's quotas admit it as they admit a new submission.
				let retried: Task | undefined;
				await this.quotas.admit(ctx, subject => this.openTasksOf(subject), async () => {
					retried = await this.onCall(ctx, { type: "retry", by: principalOf(ctx) ?? undefined });
					return true;
				});
				return retried;
			}
		},

		bulk: {
			access: { level: "operate" },
			params: {
				action: { type: "enum", values: ["cancel", "retry"] },
				filter: {
					type: "object",
					optional: true,
					strict: true,
					props: {
						status: { type: "enum", values: [...TASK_STATUSES], optional: true },
						type: { type: "string", min: 1, max: 100, optional: true },
						agent_id: { type: "string", min: 1, optional: true },
						pipeline_id: { type: "string", min: 1, optional: true }
					}
				},
				dry_run: { type: "boolean", optional: true }
			},
			async handler(this: OperationsThis, ctx: Context<{ action: "cancel" | "retry"; filter?: BulkFilter; dry_run?: boolean }>) {
				const { action, filter = {}, dry_run } = ctx.params;
				const by = principalOf(ctx) ?? undefined;
				const query: Filter = {};
				if (filter.status) query.status = filter.status;
				if (filter.type) query.type = filter.type;
				if (filter.agent_id) query.assigned_agent = filter.agent_id;
				if (filter.pipeline_id) query.pipeline_id = filter.pipeline_id;
				const found = await this.store.find({ filter: query, sort: [["created_at", 1]], limit: BULK_MAX });
				// What the action would change, by the same rules each task's own event applies: state, permissions.
				const context = { now: new Date(), random: Math.random, retry: { baseMs: 0, maxMs: 0 } };
				const matched = found.filter(task => {
					const decision = decideTask(task, { type: action, by }, context);
					return !("reject" in decision) && decision.change !== null;
				});
				if (dry_run) return { matched: matched.length, changed: 0 };
				let changed = 0;
				await forEachBounded(matched, BULK_CONCURRENCY, async task => {
					// A call per task: it runs on the task's owner, with this caller's rights, and loses nothing to a race.
					await ctx.call(`tasks.${action}`, { id: task.task_id }).then(() => changed++, () => undefined);
				});
				return { matched: matched.length, changed };
			}
		}
	}
};

export const taskOperationsMixin = schema as unknown as Partial<ServiceSchema>;
