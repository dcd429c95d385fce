/**
 * Pipelines: definitions, and one actor per run.
 *
 * A run changes only through `transition`: its mailbox on this node serialises the change, and a
 * compare-and-set on `version` in the store makes a concurrent writer on another node lose cleanly
 * (we reload and decide again). Every stage becomes a task; `task.updated` (broadcast to every
 * pipelines node) reports its end, the pure rules (`src/domain/pipelines/`) say what
 * starts next, and each transition is persisted before `pipeline.progress` announces it. Stage tasks
 * carry an idempotency key per run generation, so re-deciding a transition (after a lost
 * compare-and-set or a crash) finds the tasks it already made instead of making more.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context, Errors, Service } from "moleculer";
import nodemailer, { type Transporter } from "nodemailer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { appConfig } from "../src/platform/app-config";
import { retryDelayMs } from "../src/domain/backoff";
import type { AppConfig } from "../src/platform/config";
import { stagesForRetry, validatePipeline } from "../src/domain/pipelines/dag";
import { conflict, invalid, notFound } from "../src/platform/errors";
import { KeyedQueue } from "../src/runtime/keyed-queue";
import { runEmail, sendWebhook, WEBHOOK_ATTEMPTS, type EmailText } from "../src/runtime/notifications";
import {
	acceptsTaskOutcome, advanceRun, cancelledStages, isRunFinished, newRun, runSummary, runView, settle, stageAfterTask,
	stageTaskKey, stageTaskParams, type RunView, type StageTaskOutcome, type StageTaskParams, type StoredRun
} from "../src/domain/pipelines/runs";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { DuplicateKeyError, type CollectionSpec, type EntityStore } from "../src/storage/entity-store";
import { TERMINAL_STATUSES } from "../src/domain/tasks/state-machine";
import { EVENTS, type AuditEntry, type ErrorCode, type Pipeline, type PipelineExecution, type Principal, type RunStage, type Task } from "../src/types";

type Meta = { user?: Principal | null; idempotencyKey?: string };
type RunRef = { id: string; run_id: string };
type Change = (run: StoredRun, pipeline: Pipeline) => Promise<StoredRun | null>;

/** Who the engine is when it makes stage tasks: fixes the scope of their idempotency keys. */
const ENGINE: Principal = { sub: "system:pipelines", roles: [] };
const MAX_CAS_TRIES = 6;
const RUNS_IN_DEFINITION = 100;
const EMAIL_ATTEMPTS = 3;

const RUNS_SPEC: CollectionSpec = {
	name: "pipeline_runs",
	idField: "run_id",
	queryable: { pipeline_id: "string", status: "string", created_at: "string", version: "number", notification_due: "boolean" },
	indexes: [["status"], ["pipeline_id", "created_at"], ["notification_due"]]
};

const DEFINITIONS_SPEC: CollectionSpec = {
	name: "pipelines",
	idField: "pipeline_id",
	queryable: { name: "string", created_at: "string" },
	indexes: [["created_at"], ["name"]]
};

/**
 * The storage mixin gives a service one collection; definitions live in a second one, held by a
 * private companion service (no actions) that this service creates and owns.
 */
const DEFINITIONS_HOST = "pipeline-definitions";

type DefinitionsHost = Service & StorageThis<Pipeline>;

interface PipelinesThis extends Service, StorageThis<StoredRun> {
	config: AppConfig;
	mailbox: KeyedQueue;
	/**
	 * Running runs by id, as this node last wrote them: the fast path when this node is the only
	 * writer (no transporter). In a cluster another node may have moved a run on, so we read the store.
	 */
	live: Map<string, StoredRun>;
	/** Stage tasks made by the transition now running for a run (one at a time per run on this node). */
	madeTasks: Map<string, Set<string>>;
	/** Definitions never change once created. */
	pipelineCache: Map<string, Pipeline>;
	definitionsHost: DefinitionsHost;
	definitionsReady: Promise<void>;
	mailer?: Transporter;
	/** Set once stopped: background work (resume) gives up. */
	halted: boolean;
	definitions(): Promise<EntityStore<Pipeline>>;
	pipelineOf(id: string): Promise<Pipeline>;
	loadRun(runId: string): Promise<StoredRun>;
	runOf(ref: RunRef): Promise<StoredRun>;
	transition(runId: string, change: Change, announce?: boolean): Promise<StoredRun>;
	cancelStrayTasks(runId: string, made: Set<string>, run: StoredRun): Promise<void>;
	track(run: StoredRun): void;
	announce(run: StoredRun): void;
	advanced(run: StoredRun, pipeline: Pipeline, stages: RunStage[]): Promise<StoredRun>;
	startStage(run: StoredRun, pipeline: Pipeline, stages: RunStage[], index: number): Promise<StageTaskOutcome>;
	onStageTaskEnded(task: Task): Promise<void>;
	reconcile(run: StoredRun, pipeline: Pipeline): Promise<StoredRun | null>;
	resume(): Promise<void>;
	notify(run: StoredRun): Promise<void>;
	notifyWebhook(url: string, run: RunView): Promise<void>;
	notifyEmail(to: string, mail: EmailText, runId: string): Promise<void>;
	auditNotification(action: string, target: string, path: string, ok: boolean, status: number | null): void;
}

/** A caller's `Idempotency-Key` as an id: the same key gives the same entity on every node. */
function idempotentId(prefix: string, scope: string[], key: string): string {
	return `${prefix}-${createHash("sha256").update([...scope, key].join("\n")).digest("hex").slice(0, 32)}`;
}

/** Our own API errors by code; a missing service (also a 404) is not "the entity does not exist". */
const isApiError = (err: unknown, ...codes: ErrorCode[]) => codes.includes((err as Errors.MoleculerError).type as ErrorCode);

const PipelinesService: TypedServiceSchema<PipelinesThis> = {
	name: "pipelines",
	mixins: [storageMixin(RUNS_SPEC)],

	actions: {
		create: {
			// The whole body is checked by the dag's validator, which names every problem (cycles, indices, types).
			async handler(this: PipelinesThis, ctx: Context<unknown, Meta>): Promise<Pipeline> {
				const checked = validatePipeline(ctx.params);
				if (!checked.ok) throw invalid(checked.errors);
				const key = ctx.meta.idempotencyKey;
				const now = new Date().toISOString();
				const pipeline: Pipeline = {
					pipeline_id: key ? idempotentId("pipeline", [ctx.meta.user?.sub ?? "anonymous"], key) : `pipeline-${randomUUID()}`,
					...checked.value,
					created_at: now,
					updated_at: now
				};
				const store = await this.definitions();
				try {
					await store.insert(pipeline);
				} catch (err) {
					if (!(err instanceof DuplicateKeyError)) throw err;
					return this.pipelineOf(pipeline.pipeline_id);
				}
				this.pipelineCache.set(pipeline.pipeline_id, pipeline);
				return pipeline;
			}
		},

		list: {
			params: {
				limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true }
			},
			async handler(this: PipelinesThis, ctx: Context<{ limit: number; offset: number }>) {
				const { limit, offset } = ctx.params;
				const store = await this.definitions();
				const [pipelines, total] = await Promise.all([store.find({ sort: [["created_at", -1]], limit, offset }), store.count()]);
				return { pipelines, total, limit, offset };
			}
		},

		get: {
			params: { id: "string" },
			async handler(this: PipelinesThis, ctx: Context<{ id: string }>) {
				const pipeline = await this.pipelineOf(ctx.params.id);
				const runs = await this.store.find({ filter: { pipeline_id: pipeline.pipeline_id }, sort: [["created_at", -1]], limit: RUNS_IN_DEFINITION });
				return { ...pipeline, runs: runs.map(runSummary) };
			}
		},

		execute: {
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
				const pipeline = await this.pipelineOf(ctx.params.id);
				const key = ctx.meta.idempotencyKey;
				const runId = key ? idempotentId("run", [ctx.meta.user?.sub ?? "anonymous", pipeline.pipeline_id], key) : `run-${randomUUID()}`;
				const run = newRun(runId, pipeline, ctx.params, new Date().toISOString());
				try {
					// Persisted before any stage starts: a crash from here on is picked up by `resume`.
					await this.store.insert(run);
				} catch (err) {
					if (!(err instanceof DuplicateKeyError)) throw err;
					const existing = await this.loadRun(runId);
					return { run_id: existing.run_id, pipeline_id: existing.pipeline_id, status: existing.status };
				}
				this.track(run);
				const started = await this.transition(runId, async (current, p) =>
					current.status === "running" && current.stages.every(stage => stage.status === "waiting") ? this.advanced(current, p, current.stages) : null
				);
				return { run_id: started.run_id, pipeline_id: started.pipeline_id, status: started.status };
			}
		},

		getRun: {
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>): Promise<RunView> {
				return runView(await this.runOf(ctx.params));
			}
		},

		cancelRun: {
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>): Promise<RunView> {
				await this.runOf(ctx.params);
				let runningTasks: string[] = [];
				const run = await this.transition(ctx.params.run_id, async current => {
					if (isRunFinished(current.status)) throw conflict(`Run is ${current.status}`, { status: current.status });
					runningTasks = current.stages.flatMap(stage => (stage.status === "running" && stage.task_id ? [stage.task_id] : []));
					return settle(current, cancelledStages(current.stages), "cancelled", new Date().toISOString());
				});
				// After the run is persisted as cancelled, so the tasks' own cancellations are ignored as old news.
				await Promise.all(
					runningTasks.map(id =>
						this.broker.call("tasks.cancel", { id }).catch(err => {
							if (!isApiError(err, "NOT_FOUND", "CONFLICT")) this.logger.warn({ err, task: id, run: run.run_id }, "could not cancel a stage task");
						})
					)
				);
				return runView(run);
			}
		},

		retryRun: {
			params: { id: "string", run_id: "string" },
			async handler(this: PipelinesThis, ctx: Context<RunRef>) {
				await this.runOf(ctx.params);
				const run = await this.transition(ctx.params.run_id, async (current, pipeline) => {
					if (current.status !== "failed" && current.status !== "cancelled")
						throw conflict(`Only a failed or cancelled run can be retried; this one is ${current.status}`, { status: current.status });
					// A new generation: stage tasks get new idempotency keys, completed stages keep their results.
					const again: StoredRun = { ...current, status: "running", attempt: current.attempt + 1, finished_at: null, notification_due: false };
					return this.advanced(again, pipeline, stagesForRetry(current.stages));
				});
				return { run_id: run.run_id, pipeline_id: run.pipeline_id, status: run.status };
			}
		}
	},

	events: {
		async [EVENTS.taskUpdated](this: PipelinesThis, ctx: Context<{ task?: Task }>) {
			const task = ctx.params?.task;
			if (!task?.run_id || task.stage === null || task.stage === undefined || !TERMINAL_STATUSES.includes(task.status)) return;
			await this.onStageTaskEnded(task);
		}
	},

	methods: {
		async definitions(this: PipelinesThis) {
			await this.definitionsReady;
			return this.definitionsHost.store;
		},

		async pipelineOf(this: PipelinesThis, id: string) {
			const cached = this.pipelineCache.get(id);
			if (cached) return cached;
			const pipeline = await (await this.definitions()).get(id);
			if (!pipeline) throw notFound("Pipeline", id);
			this.pipelineCache.set(id, pipeline);
			return pipeline;
		},

		async loadRun(this: PipelinesThis, runId: string) {
			const run = await this.store.get(runId);
			if (!run) throw notFound("Run", runId);
			return run;
		},

		/** The run as stored (never an older cached copy), and only under its own pipeline. */
		async runOf(this: PipelinesThis, { id, run_id }: RunRef) {
			const run = await this.store.get(run_id);
			if (!run || run.pipeline_id !== id) throw notFound("Run", run_id);
			return run;
		},

		/**
		 * The one way a run changes. `change` sees the current run (and its pipeline) and returns the
		 * run after the change, or null for none; it may start stage tasks, which is safe to repeat.
		 */
		transition(this: PipelinesThis, runId: string, change: Change, announce = true) {
			return this.mailbox.run(runId, async () => {
				const made = new Set<string>();
				this.madeTasks.set(runId, made);
				let settled: StoredRun | undefined;
				try {
					for (let tries = 1; ; tries++) {
						const current = (!this.config.transporter && this.live.get(runId)) || (await this.loadRun(runId));
						const next = await change(current, await this.pipelineOf(current.pipeline_id));
						if (!next) return (settled = current);
						const stored: StoredRun = { ...next, version: current.version + 1 };
						const { run_id: _id, ...changes } = stored;
						if (await this.store.updateIf(runId, { version: current.version }, changes)) {
							this.track(stored);
							if (announce) this.announce(stored);
							// Off the mailbox: a slow receiver must not hold up the run's next transition.
							if (stored.notification_due && !current.notification_due) void this.notify(stored);
							return (settled = stored);
						}
						// Another node changed it first: forget our copy and decide again on the stored one.
						this.live.delete(runId);
						if (tries >= MAX_CAS_TRIES) throw conflict("Run is being changed concurrently; try again");
					}
				} finally {
					this.madeTasks.delete(runId);
					if (made.size) {
						// Without a run to compare with (the store is unreachable) we cannot tell stray from kept: keep all.
						const reference = settled ?? (await this.loadRun(runId).catch(() => undefined));
						if (reference) await this.cancelStrayTasks(runId, made, reference);
					}
				}
			});
		},

		/**
		 * A decision that lost its compare-and-set may have made stage tasks the winning state never
		 * refers to (say, the other node cancelled the run meanwhile): those must not run.
		 */
		async cancelStrayTasks(this: PipelinesThis, runId: string, made: Set<string>, run: StoredRun) {
			const kept = new Set(run.stages.map(stage => stage.task_id));
			const stray = [...made].filter(id => !kept.has(id));
			await Promise.all(
				stray.map(id =>
					this.broker.call("tasks.cancel", { id }).catch(err => {
						if (!isApiError(err, "NOT_FOUND", "CONFLICT")) this.logger.warn({ err, task: id, run: runId }, "could not cancel a stray stage task");
					})
				)
			);
		},

		track(this: PipelinesThis, run: StoredRun) {
			if (run.status === "running") this.live.set(run.run_id, run);
			else this.live.delete(run.run_id);
		},

		announce(this: PipelinesThis, run: StoredRun) {
			this.broker.broadcast(EVENTS.pipelineProgress, { run: runView(run) });
		},

		/** The run after taking `stages` as far as they go now: ready stages started, final status when over. */
		async advanced(this: PipelinesThis, run: StoredRun, pipeline: Pipeline, stages: RunStage[]) {
			const { stages: next, runStatus } = await advanceRun(pipeline, stages, (index, current) => this.startStage(run, pipeline, current, index));
			return settle(run, next, runStatus, new Date().toISOString());
		},

		async startStage(this: PipelinesThis, run: StoredRun, pipeline: Pipeline, stages: RunStage[], index: number) {
			const task = await this.broker.call<Task, StageTaskParams>("tasks.create", stageTaskParams(pipeline, run, stages, index), {
				meta: { user: ENGINE, idempotencyKey: stageTaskKey(run.run_id, index, run.attempt) }
			});
			this.madeTasks.get(run.run_id)?.add(task.task_id);
			return task;
		},

		async onStageTaskEnded(this: PipelinesThis, task: Task) {
			try {
				await this.transition(task.run_id as string, async (run, pipeline) => {
					if (!acceptsTaskOutcome(run, task)) return null;
					const stages = run.stages.map(stage => (stage.index === task.stage ? stageAfterTask(stage, task) : stage));
					return this.advanced(run, pipeline, stages);
				});
			} catch (err) {
				// A task can name a run that is not ours (a standalone task with a run_id): nothing to do.
				if (isApiError(err, "NOT_FOUND")) return;
				this.logger.error({ err, task: task.task_id, run: task.run_id }, "could not apply a stage task's outcome");
			}
		},

		/**
		 * A running run after a restart: stage tasks that ended while nobody listened are applied, and
		 * stages whose task was never made (or is gone) are started, with the same idempotency keys.
		 */
		async reconcile(this: PipelinesThis, run: StoredRun, pipeline: Pipeline) {
			if (run.status !== "running") return null;
			const stages = await Promise.all(
				run.stages.map(async (stage): Promise<RunStage> => {
					if (stage.status !== "running" || !stage.task_id) return stage;
					try {
						return stageAfterTask(stage, await this.broker.call<Task, { id: string }>("tasks.get", { id: stage.task_id }));
					} catch (err) {
						if (!isApiError(err, "NOT_FOUND")) throw err;
						return { ...stage, status: "waiting", task_id: null };
					}
				})
			);
			const next = await this.advanced(run, pipeline, stages);
			const unchanged = next.status === run.status && JSON.stringify(next.stages) === JSON.stringify(run.stages);
			return unchanged ? null : next;
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
			await Promise.all(
				open.map(run =>
					this.transition(run.run_id, (current, pipeline) => this.reconcile(current, pipeline)).catch(err =>
						this.logger.error({ err, run: run.run_id }, "could not resume a run")
					)
				)
			);
			// Ended runs whose notifications were cut short by the stop: at least once beats never.
			const due = await this.store.find({ filter: { notification_due: true } });
			for (const run of due) void this.notify(run);
			if (open.length || due.length) this.logger.info({ runs: open.length, notifications: due.length }, "pipeline runs resumed");
		},

		/** Never throws and never touches the run's outcome: failures are logged and audited. */
		async notify(this: PipelinesThis, run: StoredRun) {
			try {
				const view = runView(run);
				const jobs: Promise<void>[] = [];
				if (run.notification?.webhook) jobs.push(this.notifyWebhook(run.notification.webhook, view));
				if (run.notification?.email) {
					const name = await this.pipelineOf(run.pipeline_id).then(p => p.name, () => run.pipeline_id);
					jobs.push(this.notifyEmail(run.notification.email, runEmail(name, view), run.run_id));
				}
				await Promise.all(jobs);
				await this.transition(
					run.run_id,
					async current => (current.notification_due && current.finished_at === run.finished_at ? { ...current, notification_due: false } : null),
					false
				);
			} catch (err) {
				this.logger.warn({ err, run: run.run_id }, "notification bookkeeping failed");
			}
		},

		async notifyWebhook(this: PipelinesThis, url: string, run: RunView) {
			const outcome = await sendWebhook({
				url,
				body: JSON.stringify(run),
				secret: this.config.secrets.jwtSecret,
				attempts: WEBHOOK_ATTEMPTS,
				delayMs: attempt => retryDelayMs(attempt, { baseMs: this.config.retryBaseDelayMs, maxMs: this.config.retryMaxDelayMs })
			});
			const where = url.split("?")[0];
			if (!outcome.ok)
				this.logger.warn({ run: run.run_id, url: where, attempts: outcome.attempts, error: outcome.error }, "webhook notification failed");
			this.auditNotification("notification.webhook", run.run_id, where, outcome.ok, outcome.status);
		},

		async notifyEmail(this: PipelinesThis, to: string, mail: EmailText, runId: string) {
			if (!this.config.smtpUrl) {
				this.logger.info({ run: runId }, "SMTP_URL is not set: email notification skipped");
				return;
			}
			this.mailer ??= nodemailer.createTransport(this.config.smtpUrl);
			let lastError: unknown;
			for (let attempt = 1; attempt <= EMAIL_ATTEMPTS; attempt++) {
				try {
					await this.mailer.sendMail({ from: this.config.smtpFrom, to, subject: mail.subject, text: mail.text });
					this.auditNotification("notification.email", runId, `mailto:${to}`, true, null);
					return;
				} catch (err) {
					lastError = err;
					if (attempt < EMAIL_ATTEMPTS)
						await new Promise(resolve => setTimeout(resolve, retryDelayMs(attempt, { baseMs: this.config.retryBaseDelayMs, maxMs: this.config.retryMaxDelayMs })).unref());
				}
			}
			this.logger.warn({ run: runId, err: (lastError as Error)?.message }, "email notification failed");
			this.auditNotification("notification.email", runId, `mailto:${to}`, false, null);
		},

		auditNotification(this: PipelinesThis, action: string, target: string, path: string, ok: boolean, status: number | null) {
			const entry: Omit<AuditEntry, "id"> = {
				timestamp: new Date().toISOString(),
				actor: "system",
				roles: [],
				action,
				method: action === "notification.webhook" ? "POST" : "SMTP",
				path,
				target,
				result: ok ? "success" : "failure",
				status: status ?? 0,
				request_id: null,
				ip: null
			};
			this.broker.emit(EVENTS.audit, entry);
		}
	},

	created(this: PipelinesThis) {
		this.config = appConfig(this.broker);
		this.mailbox = new KeyedQueue();
		this.live = new Map();
		this.madeTasks = new Map();
		this.pipelineCache = new Map();
		this.halted = false;
		let markReady: () => void = () => undefined;
		this.definitionsReady = new Promise(resolve => (markReady = resolve));
		// Started by the broker with every other local service; its `started` runs once the store is open.
		this.definitionsHost = this.broker.createService({
			name: DEFINITIONS_HOST,
			mixins: [storageMixin(DEFINITIONS_SPEC)],
			started() {
				markReady();
			}
		}) as DefinitionsHost;
	},

	async started(this: PipelinesThis) {
		await this.definitionsReady;
		// Not awaited: resuming waits for the tasks service, which may live on a node that joins later.
		void this.resume().catch(err => this.logger.error({ err }, "resume failed"));
	},

	async stopped(this: PipelinesThis) {
		this.halted = true;
		this.mailer?.close();
		// Destroyed alone (hot reload) rather than with the broker: take the companion along, or the next instance would find two.
		if (!this.broker.stopping) await this.broker.destroyService(this.definitionsHost).catch(() => undefined);
	}
};

export default PipelinesService;
