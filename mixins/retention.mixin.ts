/**
 * Retention sweeps (TASK_RETENTION_DAYS, RUN_RETENTION_DAYS): finished tasks and runs older than
 * their retention are removed, by the rules of src/domain/retention.ts. One mixin for the tasks
 * service, one for the pipelines service; each sweeps on one node of the cluster (the first by id,
 * src/runtime/retention.ts) at least once a minute, in batches of RETENTION_BATCH rows: one query
 * and one guarded removal each (the store re-checks status and age, so a record retried meanwhile
 * stays), through the entity actor, the event loop turning between batches. Once the rows removed
 * since the last compaction are a quarter of the store, it is compacted (NeDB rewrites its file).
 *
 * A run goes first, then its finished stage tasks (`tasks.removeForRuns`); a stop in between leaves
 * tasks naming a run that is gone, which the task sweep takes later as orphans. Removed tasks are
 * told in `tasks.removed` (counts by status) so the metrics' figures by status follow at once;
 * counters (`mcp_tasks_total`) never go back.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { FINISHED_RUN_STATUSES, isRunFinished, type StoredRun } from "../src/domain/pipelines/runs";
import {
	finishedBefore, isOrphanTaskExpired, isRunExpired, isTaskExpired, orphanRetentionMs, RETENTION_BATCH, retentionPolicy, sweepIntervalMs
} from "../src/domain/retention";
import { isTerminal, TERMINAL_STATUSES } from "../src/domain/tasks/state-machine";
import type { AppConfig } from "../src/platform/config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import type { EntityActor } from "../src/runtime/entity-actor";
import { every } from "../src/runtime/periodic";
import { sweepInBatches, sweepsHere } from "../src/runtime/retention";
import type { StoredTask, TaskRuntime } from "../src/runtime/task-runtime";
import type { Filter } from "../src/storage/entity-store";
import { EVENTS, type TaskStatus, type TasksRemovedEvent } from "../src/types";
import type { StorageThis } from "./db.mixin";

interface RetentionThis extends Service {
	config: AppConfig;
	retentionTimer?: NodeJS.Timeout;
	retentionStopped: boolean;
	/** Rows removed since the store was last compacted. */
	removedSinceCompaction: number;
	compactAfterSweep(what: string, removed: number, startedAt: number): Promise<void>;
	sweepEvery(retentionMs: number, sweep: () => Promise<unknown>): void;
}

/** Compact once the rows removed since the last compaction are this share of the rows there were. */
const COMPACT_FRACTION = 0.25;

const warn = (service: Service) => (err: unknown) => service.logger.warn({ err: (err as Error).message }, "retention sweep failed");

const runIdsParam = { type: "array", items: { type: "string", min: 1 }, min: 1, max: RETENTION_BATCH } as const;

/** Shared by both: the schedule, compaction and the log line once a sweep removed something. */
const common: TypedServiceSchema<RetentionThis> = {
	name: "",
	methods: {
		/** `sweep` at the interval the retention calls for, on the one node of the cluster that sweeps this service. */
		sweepEvery(this: RetentionThis, retentionMs: number, sweep: () => Promise<unknown>) {
			this.retentionTimer = every(sweepIntervalMs(retentionMs), async () => {
				if (sweepsHere(this.broker, this.name)) await sweep();
			}, warn(this));
		},

		async compactAfterSweep(this: RetentionThis & StorageThis<object>, what: string, removed: number, startedAt: number) {
			this.removedSinceCompaction += removed;
			if (!this.removedSinceCompaction || this.retentionStopped || !this.store.compact) return;
			// NeDB rewrites every record in one synchronous pass (≈ 6 ms of event loop per 1,000 tasks): only once
			// the rows removed since are a quarter of what was there, so its cost stays in proportion to what went.
			const left = await this.store.count();
			if (this.removedSinceCompaction < COMPACT_FRACTION * (left + this.removedSinceCompaction)) return;
			const total = this.removedSinceCompaction;
			this.removedSinceCompaction = 0;
			await this.store.compact?.();
			this.logger.info({ removed, compacted: total, ms: Date.now() - startedAt }, `${what} retention sweep`);
		}
	},
	created(this: RetentionThis) {
		this.retentionStopped = false;
		this.removedSinceCompaction = 0;
	},
	stopped(this: RetentionThis) {
		this.retentionStopped = true;
		clearInterval(this.retentionTimer);
	}
};

// ---------- tasks ----------

interface TaskRetentionThis extends RetentionThis, StorageThis<StoredTask> {
	runtime: TaskRuntime;
	sweepTasks(): Promise<number>;
	sweepOrphans(now: Date): Promise<number>;
	removeTasks(tasks: StoredTask[], guard: Filter): Promise<number>;
}

const tasksSchema: TypedServiceSchema<TaskRetentionThis> = {
	name: "tasks",
	mixins: [common as unknown as Partial<ServiceSchema>],
	actions: {
		/** The pipelines service removed these runs (its retention): their finished stage tasks go with them. */
		removeForRuns: {
			access: "system",
			params: { run_ids: runIdsParam },
			async handler(this: TaskRetentionThis, ctx: Context<{ run_ids: string[] }>) {
				const filter: Filter = { run_id: { $in: ctx.params.run_ids }, status: { $in: [...TERMINAL_STATUSES] } };
				const removed = await sweepInBatches(async (offset, limit) => {
					const found = await this.store.find({ filter, offset, limit });
					return { found: found.length, removed: await this.removeTasks(found, { run_id: { $in: ctx.params.run_ids } }) };
				});
				this.removedSinceCompaction += removed;
				return { removed };
			}
		}
	},
	methods: {
		/** Standalone tasks past the task retention, then orphans; compacts when anything went. */
		async sweepTasks(this: TaskRetentionThis) {
			const startedAt = Date.now();
			const now = new Date();
			const policy = retentionPolicy(this.config.retention);
			const cutoff = finishedBefore(now, policy.taskMs);
			const guard: Filter = { run_id: null, finished_at: { $lt: cutoff } };
			let removed = await sweepInBatches(async (offset, limit) => {
				if (this.retentionStopped) return { found: 0, removed: 0 };
				const found = await this.store.find({ filter: { ...guard, status: { $in: [...TERMINAL_STATUSES] } }, offset, limit });
				return { found: found.length, removed: await this.removeTasks(found.filter(t => isTaskExpired(t, now, policy)), guard) };
			});
			// A failure there (the pipelines service going away mid-sweep) leaves what went above to be compacted.
			removed += await this.sweepOrphans(now).catch(err => {
				this.logger.warn({ err: (err as Error).message }, "orphan task sweep failed; tried again next time");
				return 0;
			});
			await this.compactAfterSweep("task", removed, startedAt);
			return removed;
		},

		/** Finished tasks naming a run that is not there: asked of the pipelines service, skipped while it cannot answer. */
		async sweepOrphans(this: TaskRetentionThis, now: Date) {
			if (!this.broker.registry.getActionEndpoints("pipelines.existingRuns")?.hasAvailable()) return 0;
			const policy = retentionPolicy(this.config.retention);
			const guard: Filter = { finished_at: { $lt: finishedBefore(now, orphanRetentionMs(policy)) } };
			return sweepInBatches(async (offset, limit) => {
				if (this.retentionStopped) return { found: 0, removed: 0 };
				const found = await this.store.find({ filter: { ...guard, run_id: { $ne: null }, status: { $in: [...TERMINAL_STATUSES] } }, offset, limit });
				if (!found.length) return { found: 0, removed: 0 };
				const runIds = [...new Set(found.map(t => t.run_id!))];
				const existing = new Set(await this.broker.call<string[], { run_ids: string[] }>("pipelines.existingRuns", { run_ids: runIds }));
				const orphans = found.filter(t => isOrphanTaskExpired(t, existing.has(t.run_id!), now, policy));
				return { found: found.length, removed: await this.removeTasks(orphans, { ...guard, run_id: { $in: runIds } }) };
			});
		},

		/** One guarded removal per status among `tasks` (the guard adds it), so `tasks.removed` counts exactly what went. */
		async removeTasks(this: TaskRetentionThis, tasks: StoredTask[], guard: Filter) {
			const byStatus = new Map<TaskStatus, string[]>();
			for (const task of tasks) byStatus.set(task.status, [...(byStatus.get(task.status) ?? []), task.task_id]);
			const removed: TasksRemovedEvent["removed"] = {};
			let total = 0;
			for (const [status, ids] of byStatus) {
				const n = await this.runtime.actor.removeWhere(ids, { ...guard, status }, t => isTerminal(t.status));
				if (n) removed[status] = n;
				total += n;
			}
			if (total) this.broker.broadcast(EVENTS.tasksRemoved, { removed } satisfies TasksRemovedEvent);
			return total;
		}
	},
	started(this: TaskRetentionThis) {
		this.sweepEvery(retentionPolicy(this.config.retention).taskMs, () => this.sweepTasks());
	}
};

export const taskRetentionMixin = tasksSchema as unknown as Partial<ServiceSchema>;

// ---------- runs ----------

interface RunRetentionThis extends RetentionThis, StorageThis<StoredRun> {
	actor: EntityActor<StoredRun>;
	sweepRuns(): Promise<number>;
}

const runsSchema: TypedServiceSchema<RunRetentionThis> = {
	name: "pipelines",
	mixins: [common as unknown as Partial<ServiceSchema>],
	actions: {
		/** Which of these runs are stored (the task sweep's question about tasks naming a run). */
		existingRuns: {
			access: "system",
			params: { run_ids: runIdsParam },
			async handler(this: RunRetentionThis, ctx: Context<{ run_ids: string[] }>) {
				const runs = await this.store.find({ filter: { run_id: { $in: ctx.params.run_ids } } });
				return runs.map(run => run.run_id);
			}
		}
	},
	methods: {
		/** Finished runs past the run retention: each batch removed, then its finished stage tasks. */
		async sweepRuns(this: RunRetentionThis) {
			const startedAt = Date.now();
			const now = new Date();
			const policy = retentionPolicy(this.config.retention);
			const guard: Filter = { status: { $in: [...FINISHED_RUN_STATUSES] }, finished_at: { $lt: finishedBefore(now, policy.runMs) } };
			const removed = await sweepInBatches(async (offset, limit) => {
				if (this.retentionStopped) return { found: 0, removed: 0 };
				const found = await this.store.find({ filter: guard, offset, limit });
				const expired = found.filter(run => isRunExpired(run, now, policy)).map(run => run.run_id);
				const n = await this.actor.removeWhere(expired, guard, run => isRunFinished(run.status));
				// Only the runs that went (not one retried meanwhile) take their tasks along.
				let gone = expired;
				if (n < expired.length) {
					const left = new Set((await this.store.find({ filter: { run_id: { $in: expired } } })).map(run => run.run_id));
					gone = expired.filter(id => !left.has(id));
				}
				if (gone.length)
					await this.broker.call("tasks.removeForRuns", { run_ids: gone }).catch(err =>
						this.logger.warn({ err: (err as Error).message, runs: gone.length }, "stage tasks of removed runs stay for now (the task sweep takes them later)")
					);
				return { found: found.length, removed: n };
			});
			await this.compactAfterSweep("run", removed, startedAt);
			return removed;
		}
	},
	started(this: RunRetentionThis) {
		this.sweepEvery(retentionPolicy(this.config.retention).runMs, () => this.sweepRuns());
	}
};

export const runRetentionMixin = runsSchema as unknown as Partial<ServiceSchema>;
