/**
 * Pipelines: definitions, and one actor per run.
 *
 * A run changes only by an event decided by `decideRun` (src/domain/pipelines/decide.ts) and
 * committed by the entity actor (mailbox + compare-and-set), which is persisted before it is
 * announced. Its effects come after: stage tasks are made (under ids derived from the run, so
 * making one twice finds the first), cancelled, and the run's end is notified. `task.updated`,
 * broadcast to every pipelines node, reports a stage task's end; when several nodes decide on it,
 * one commit wins and the others find the stage already moved on. Finished runs past
 * RUN_RETENTION_DAYS are swept with their stage tasks (mixins/retention.mixin.ts).
 */
import type { Context, Errors } from "moleculer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { pipelineDefinitionsMixin, type DefinitionsThis } from "../mixins/pipeline-definitions.mixin";
import { quotasMixin, type QuotasThis } from "../mixins/quotas.mixin";
import { runRetentionMixin } from "../mixins/retention.mixin";
import { decideRun, type RunEffect, type RunEvent } from "../src/domain/pipelines/decide";
import { newRun, runSummary, runView, type RunView, type StageTaskOutcome, type StoredRun } from "../src/domain/pipelines/runs";
import { mayExecute, mayManage } from "../src/domain/access";
import { TERMINAL_STATUSES } from "../src/domain/tasks/state-machine";
import { appConfig } from "../src/platform/app-config";
import type { AppConfig } from "../src/platform/config";
import { conflict, forbidden, invalid, notFound } from "../src/platform/errors";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { principalOf } from "../src/platform/trust";
import { executionProblems } from "../src/runtime/execution-checks";
import { EntityActor, type Outcome } from "../src/runtime/entity-actor";
import { idempotentId, newId, stageTaskId } from "../src/runtime/ids";
import { RunNotifier } from "../src/runtime/run-notifier";
import { COLLECTIONS } from "../src/storage/collections";
import { insertNew } from "../src/storage/entity-store";
import { EVENTS, type ErrorCode, type Pipeline, type PipelineExecution, type Principal, type Task } from "../src/types";

type Meta = { user?: Principal | null; idempotencyKey?: string };
type RunRef = { id: string; run_id: string };

const RUNS_IN_DEFINITION = 100;

interface PipelinesThis extends DefinitionsThis, StorageThis<StoredRun>, QuotasThis {
	config: AppConfig;
	actor: EntityActor<StoredRun>;
	notifier: RunNotifier;
	/** Set once stopped: background work (resume) gives up. */
	halted: boolean;
	runOf(ref: RunRef): Promise<StoredRun>;
	applyRun(runId: string, pipeline: Pipeline, event: RunEvent): Promise<StoredRun>;
	execute(outcome: Outcome<StoredRun, RunEffect>, pipeline: Pipeline): Promise<void>;
	createStageTask(run: StoredRun, pipeline: Pipeline, effect: Extract<RunEffect, { type: "create-stage-task" }>): Promise<void>;
	reconcile(run: StoredRun): Promise<void>;
	resume(): Promise<void>;
	notify(run: StoredRun, pipeline: Pipeline): Promise<void>;
}

/** Our own API errors by code; a missing service (also a 404) is not "the entity does not exist". */
const isApiError = (err: unknown, ...codes: ErrorCode[]) => codes.includes((err as Errors.MoleculerError).type as ErrorCode);

const PipelinesService: TypedServiceSchema<PipelinesThis> = {
	name: "pipelines",
	mixins: [storageMixin(COLLECTIONS.runs), pipelineDefinitionsMixin, quotasMixin, runRetentionMixin],

	actions: {
		get: {
			access: { level: "read" },
			params: { id: "string" },
			async handler(this: PipelinesThis, ctx: Context<{ id: string }>) {
				return this.reads.read(`pipelines.get:${ctx.params.id}`, async () => {
					const pipeline = await this.pipelineOf(ctx.params.id);
					const runs = await this.store.find({ filter: { pipeline_id: pipeline.pipeline_id }, sort: [["created_at", -1]], limit: RUNS_IN_DEFINITION });
					return { ...pipeline, runs: runs.map(runSummary) };
				});
			}
		},

		execute: {
			access: { level: "operate" },
			params: {
				id: "string",
				input_data: { type: "object", optional: true },
				parameters: { type: "object", optional: true },
				notification: {
					type: "object",
					optional: true,
					strict: "remove",
					props: { webhook: { type: "url", optional: true }, email: { type: "email", optional: true } }
				},
				$$strict: "remove"
			},
			async handler(this: PipelinesThis, ctx: Context<PipelineExecution & { id: string }, Meta>) {
				const problems = await executionProblems(ctx.params, this.config);
				if (problems.length) throw invalid(problems);
				const pipeline = await this.pipelineOf(ctx.params.id);
				// Another node may have removed it since this one cached it.
				if (this.config.transporter && !(await (await this.definitions()).get(pipeline.pipeline_id))) throw notFound("Pipeline", pipeline.pipeline_id);
				const by = principalOf(ctx);
				if (by && !mayExecute(by, pipeline)) throw forbidden("This pipeline's permissions do not let you execute it");
				const key = ctx.meta.idempotencyKey;
				const runId = key ? idempotentId("run", [by?.sub ?? "anonymous", pipeline.pipeline_id], key) : newId("run");
				const run = newRun(runId, pipeline, ctx.params, new Date().toISOString(), by?.sub ?? null);
				// Persisted before any stage starts: a crash from here on is picked up by `resume`. The same key again answers
				// with the run it made; else the executor's hourly quota admits it (src/runtime/quotas.ts).
				const made = !(key && (await this.store.get(runId))) && (await this.quotas.admit(ctx, null, () => insertNew(this.store, run)));
				if (!made) {
					const existing = await this.actor.load(runId);
					return { run_id: existing.run_id, pipeline_id: existing.pipeline_id, status: existing.status };
				}
				const started = await this.applyRun(runId, pipeline, { type: "start" });
				return { run_id: started.run_id, pipeline_id: started.pipeline_id, status: started.status };
			}
		},

		/** Its creator, an admin or its managers; refused while a run of it is still going. Its finished runs go with it. */
		remove: {
			access: { level: "operate" },
			params: { id: "string" },
			async handler(this: PipelinesThis, ctx: Context<{ id: string }>) {
				const pipeline = await this.pipelineOf(ctx.params.id);
				const by = principalOf(ctx);
				if (by && !mayManage(by, pipeline.created_by ?? null, pipeline.permissions?.manage))
					throw forbidden("Only the pipeline's creator, an admin or its managers may remove it");
				if (await this.store.count({ pipeline_id: pipeline.pipeline_id, status: "running" }))
					throw conflict("The pipeline has a run still going: cancel it first", { pipeline_id: pipeline.pipeline_id });
				await (await this.definitions()).remove(pipeline.pipeline_id);
				this.pipelineCache.delete(pipeline.pipeline_id);
				const runs = await this.store.removeMany({ pipeline_id: pipeline.pipeline_id });
				return { pipeline_id: pipeline.pipeline_id, removed: true, runs_removed: runs };
			}
		},

		getRun: {
			access: { level: "read" },
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>): Promise<RunView> {
				return runView(await this.runOf(ctx.params));
			}
		},

		cancelRun: {
			access: { level: "operate" },
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>): Promise<RunView> {
				return runView(await this.applyRun(ctx.params.run_id, await this.pipelineOf(ctx.params.id), { type: "cancel", by: principalOf(ctx) ?? undefined }));
			}
		},

		retryRun: {
			access: { level: "operate" },
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>) {
				const run = await this.applyRun(ctx.params.run_id, await this.pipelineOf(ctx.params.id), { type: "retry", by: principalOf(ctx) ?? undefined });
				return { run_id: run.run_id, pipeline_id: run.pipeline_id, status: run.status };
			}
		}
	},

	events: {
		async [EVENTS.taskUpdated](this: PipelinesThis, ctx: Context<{ task?: Task }>) {
			const task = ctx.params?.task;
			if (!task?.run_id || !task.pipeline_id || task.stage === null || task.stage === undefined || !TERMINAL_STATUSES.includes(task.status)) return;
			try {
				await this.applyRun(task.run_id, await this.pipelineOf(task.pipeline_id), { type: "task-ended", task });
			} catch (err) {
				// A task can name a run or pipeline that is not ours (a standalone task with a run_id): nothing to do.
				if (isApiError(err, "NOT_FOUND")) return;
				this.logger.error({ err, task: task.task_id, run: task.run_id }, "could not apply a stage task's outcome");
			}
		}
	},

	methods: {
		/** The run as stored (never an older cached copy), and only under its own pipeline. */
		async runOf(this: PipelinesThis, { id, run_id }: RunRef) {
			const run = await this.store.get(run_id);
			if (!run || run.pipeline_id !== id) throw notFound("Run", run_id);
			return run;
		},

		async applyRun(this: PipelinesThis, runId: string, pipeline: Pipeline, event: RunEvent) {
			const outcome = await this.actor.change(runId, run => decideRun(run, event, { pipeline, now: new Date(), stageTaskId }));
			await this.execute(outcome, pipeline);
			return outcome.entity;
		},

		/** Runs the effects; the caller's answer waits for the stage tasks to be made or cancelled, never for notifications. */
		async execute(this: PipelinesThis, { entity: run, effects }: Outcome<StoredRun, RunEffect>, pipeline: Pipeline) {
			const waits: Promise<void>[] = [];
			for (const effect of effects)
				switch (effect.type) {
					case "announce":
						this.broker.broadcast(EVENTS.pipelineProgress, { run: runView(run) });
						break;
					case "create-stage-task":
						waits.push(this.createStageTask(run, pipeline, effect));
						break;
					case "cancel-task":
						waits.push(
							this.broker.call("tasks.cancel", { id: effect.taskId }).then(
								() => undefined,
								err => {
									if (!isApiError(err, "NOT_FOUND", "CONFLICT")) this.logger.warn({ err, task: effect.taskId, run: run.run_id }, "could not cancel a stage task");
								}
							)
						);
						break;
					case "notify":
						// A slow receiver must not hold up the run's next transition.
						void this.notify(run, pipeline);
						break;
				}
			await Promise.all(waits);
		},

		/** Makes a stage's task; one that already ended (made before a crash) is taken as its outcome at once. */
		async createStageTask(this: PipelinesThis, run: StoredRun, pipeline: Pipeline, { index, params, taskId }) {
			let event: RunEvent;
			try {
				const task = await this.broker.call<Task, typeof params>("tasks.create", params, {
					// Stage tasks follow their pipeline: its run's executor owns them, its managers may manage them.
					meta: { taskId, createdBy: run.created_by ?? null, managers: pipeline.permissions?.manage }
				});
				if (!TERMINAL_STATUSES.includes(task.status)) return;
				event = { type: "task-ended", task };
			} catch (err) {
				event = { type: "stage-start-failed", index, taskId, reason: (err as Error).message };
			}
			await this.applyRun(run.run_id, pipeline, event).catch(err => this.logger.error({ err, run: run.run_id, stage: index }, "could not apply a stage task's start"));
		},

		/** A running run after a restart: stage tasks that ended while nobody listened are taken, and tasks never made are made. */
		async reconcile(this: PipelinesThis, run: StoredRun) {
			const tasks: Record<number, StageTaskOutcome | null> = {};
			for (const stage of run.stages) {
				if (stage.status !== "running" || !stage.task_id) continue;
				tasks[stage.index] = await this.broker.call<Task, { id: string }>("tasks.get", { id: stage.task_id }).catch(err => {
					if (isApiError(err, "NOT_FOUND")) return null;
					throw err;
				});
			}
			await this.applyRun(run.run_id, await this.pipelineOf(run.pipeline_id), { type: "reconcile", tasks });
		},

		async resume(this: PipelinesThis) {
			// In slices, so a service stopped before the tasks service ever showed up leaves no poller behind.
			for (;;) {
				if (this.halted) return;
				try {
					await this.broker.waitForServices(["tasks"], 5000, 100);
					break;
				} catch {
					/* not there yet */
				}
			}
			const open = await this.store.find({ filter: { status: "running" } });
			await Promise.all(open.map(run => this.reconcile(run).catch(err => this.logger.error({ err, run: run.run_id }, "could not resume a run"))));
			// Ended runs whose notifications were cut short by the stop: at least once beats never.
			const due = await this.store.find({ filter: { notification_due: true } });
			for (const run of due) void this.pipelineOf(run.pipeline_id).then(pipeline => this.notify(run, pipeline), () => undefined);
			if (open.length || due.length) this.logger.info({ runs: open.length, notifications: due.length }, "pipeline runs resumed");
		},

		async notify(this: PipelinesThis, run: StoredRun, pipeline: Pipeline) {
			await this.notifier.notify(run, pipeline.name);
			await this.applyRun(run.run_id, pipeline, { type: "notified", finishedAt: run.finished_at }).catch(err =>
				this.logger.warn({ err, run: run.run_id }, "notification bookkeeping failed")
			);
		}
	},

	created(this: PipelinesThis) {
		this.config = appConfig(this.broker);
		this.notifier = new RunNotifier(this.broker, this.config, this.logger);
		this.halted = false;
		// Without a transporter this node is the runs' only writer and may trust its own copies.
		const live = new Map<string, StoredRun>();
		const trustOwnCopies = !this.config.transporter;
		this.actor = new EntityActor<StoredRun>({
			kind: "Run",
			idField: "run_id",
			store: () => this.store,
			maxTries: 6,
			cache: {
				get: id => live.get(id),
				put: run => (trustOwnCopies && run.status === "running" ? live.set(run.run_id, run) : live.delete(run.run_id)),
				delete: id => live.delete(id)
			}
		});
	},

	started(this: PipelinesThis) {
		// Not awaited: resuming waits for the tasks service, which may live on a node that joins later.
		void this.resume().catch(err => this.logger.error({ err }, "resume failed"));
	},

	async stopped(this: PipelinesThis) {
		this.halted = true;
		this.notifier.close();
	}
};

export default PipelinesService;
