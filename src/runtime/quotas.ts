/**
 * This node's submission quotas (what they are: src/domain/quotas.ts). The hourly budget is a window
 * counter per subject (src/platform/window-counter.ts, rate-limiter-flexible); the open-task limit
 * counts the subject's open tasks in the store — the truth — and, so that a count and the insert
 * after it cannot interleave with another submission's, runs both one subject at a time: a mailbox
 * per subject on this node (keyed-queue.ts), and with Redis a short lock per subject across nodes.
 *
 * What holds:
 * - With REDIS_URL: one hourly budget per subject for the whole cluster; and submissions of one
 *   subject on any nodes never take it above MAX_OPEN_TASKS_PER_SUBJECT, as long as a count and
 *   its insert take less than the lock's lease (LOCK_LEASE_MS; they take milliseconds). While Redis
 *   is unreachable, both fall back to what holds without it, and say so once in the log.
 * - Without Redis: the hourly budget is per node (the tasks and pipelines services of one node
 *   share it; k nodes admit up to k times the limit). Submissions are serialized per subject on each
 *   node only: exact on one node; with k nodes running the tasks service, submissions that race on
 *   different nodes may each pass the same count, so a subject can go over by at most k − 1.
 */
import { randomUUID } from "node:crypto";
import type Redis from "ioredis";
import type { Context, Logger, ServiceBroker } from "moleculer";
import { hourlyView, openTasksVerdict, quotaSubject, refusalMessage, tightest, type QuotaView } from "../domain/quotas";
import { nodeConfig } from "../platform/app-config";
import type { QuotaSettings } from "../platform/config";
import { ApiError } from "../platform/errors";
import { failFastRedis } from "../platform/redis-client";
import { principalOf } from "../platform/trust";
import { SharedResources } from "../platform/shared-resources";
import { WindowCounter } from "../platform/window-counter";
import { KeyedQueue } from "./keyed-queue";

const HOUR_SEC = 3600;
/** How long a subject's lock lives if its holder never releases it (a node that died holding it). */
export const LOCK_LEASE_MS = 5000;
/** How long a submission waits for its subject's lock: past a dead holder's lease, within a call's timeout. */
const LOCK_WAIT_MS = LOCK_LEASE_MS + 1000;
/** Deletes the lock only if it is still the holder's (its lease may have run out and another taken it). */
const RELEASE_LOCK = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`;

/** What the gateway reads back from an admitted submission's call: the quota nearest to refusing, for the answer's headers. */
export interface QuotaMeta {
	quota?: QuotaView;
}

const quotaExceeded = (view: QuotaView) => new ApiError("QUOTA_EXCEEDED", refusalMessage(view), view);

/** One subject at a time: in this node's mailbox, then (with Redis) under the subject's lock for every node. */
class SubjectLock {
	private readonly local = new KeyedQueue();

	constructor(private readonly redis: Redis | null, private readonly prefix: string) {}

	run<T>(subject: string, work: () => Promise<T>): Promise<T> {
		return this.local.run(subject, async () => {
			const release = await this.acquire(`${this.prefix}:${subject}`);
			try {
				return await work();
			} finally {
				await release();
			}
		});
	}

	private async acquire(key: string): Promise<() => Promise<void>> {
		const redis = this.redis;
		const none = async () => undefined;
		if (!redis) return none;
		const token = randomUUID();
		const deadline = Date.now() + LOCK_WAIT_MS;
		for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
			let taken: string | null;
			try {
				taken = await redis.set(key, token, "PX", LOCK_LEASE_MS, "NX");
			} catch {
				// Redis unreachable: this node's mailbox is all the serializing there is.
				return none;
			}
			if (taken === "OK") return () => redis.eval(RELEASE_LOCK, 1, key, token).then(none, none);
			if (Date.now() > deadline) throw new ApiError("NOT_READY", "The open-task quota could not be checked in time: try again");
			await new Promise(resolve => setTimeout(resolve, pause * (0.5 + Math.random())));
		}
	}
}

export class SubmissionQuotas {
	private readonly redis: Redis | null;
	private readonly hourly: WindowCounter | null;
	private readonly lock: SubjectLock | null;

	constructor(private readonly limits: QuotaSettings, options: { redisUrl?: string; namespace: string; logger: Logger }) {
		const { redisUrl, namespace, logger } = options;
		this.redis =
			redisUrl && (limits.tasksPerHour > 0 || limits.maxOpenTasks > 0)
				? failFastRedis(redisUrl, (reachable, err) =>
						reachable ? logger.info("Redis reachable: task quotas hold for the whole cluster") : logger.warn({ err: err?.message }, "Redis unreachable: task quotas per node")
					)
				: null;
		const shared = this.redis ? { redis: this.redis, prefix: `${namespace}-quota-hour` } : undefined;
		this.hourly = limits.tasksPerHour > 0 ? new WindowCounter(limits.tasksPerHour, HOUR_SEC, { shared }) : null;
		this.lock = limits.maxOpenTasks > 0 ? new SubjectLock(this.redis, `${namespace}-quota-lock`) : null;
	}

	/**
	 * Runs `submit` when the quotas of the call's principal let it, else refuses with QUOTA_EXCEEDED
	 * (429) and runs nothing. `submit` answers false when it found an earlier submission under the
	 * same id instead of making one (an Idempotency-Key's duplicate): that is not counted, and neither
	 * is a submission that failed. `openTasks` counts a subject's open tasks: given for task
	 * submissions, which the open-task limit admits; a pipeline execution spends the hourly budget
	 * only. True when `submit` made something; its quota figures are then in `ctx.meta.quota`.
	 */
	async admit(ctx: Context<unknown, object>, openTasks: ((subject: string) => Promise<number>) | null, submit: () => Promise<boolean>): Promise<boolean> {
		const subject = quotaSubject(principalOf(ctx));
		const lock = openTasks ? this.lock : null;
		if (!subject || (!this.hourly && !lock)) return submit();
		const admit = async (): Promise<boolean> => {
			const views: QuotaView[] = [];
			if (lock && openTasks) {
				const verdict = openTasksVerdict(await openTasks(subject), this.limits.maxOpenTasks);
				if (!verdict.allowed) throw quotaExceeded(verdict.view);
				views.push(verdict.view);
			}
			if (this.hourly) {
				const decision = await this.hourly.hit(subject);
				const view = hourlyView(decision, Date.now());
				if (!decision.allowed) {
					// A refused submission spends nothing: the hit is taken back.
					await this.hourly.refund(subject);
					throw quotaExceeded(view);
				}
				views.push(view);
			}
			let fresh = false;
			try {
				fresh = await submit();
			} finally {
				// A duplicate, or a submission that failed, is not counted either.
				if (!fresh) await this.hourly?.refund(subject).catch(() => undefined);
			}
			if (fresh) (ctx.meta as QuotaMeta).quota = tightest(views);
			return fresh;
		};
		return lock ? lock.run(subject, admit) : admit();
	}

	async close(): Promise<void> {
		this.redis?.disconnect();
	}
}

/** One per broker: a node's tasks and pipelines services spend the same budget (when Redis does not share it). */
const perBroker = new SharedResources<ServiceBroker, SubmissionQuotas>(quotas => quotas.close(), new WeakMap());

export function acquireQuotas(broker: ServiceBroker): SubmissionQuotas {
	return perBroker.acquire(broker, () => {
		const config = nodeConfig(broker);
		return new SubmissionQuotas(config.quotas, { redisUrl: config.redisUrl, namespace: config.broker.namespace, logger: broker.getLogger("quotas") });
	});
}

export function releaseQuotas(broker: ServiceBroker): Promise<void> {
	return perBroker.release(broker);
}
