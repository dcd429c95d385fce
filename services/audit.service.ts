/**
 * Append-only audit log. The gateway emits one `audit.entry` per mutating call; Moleculer's
 * balanced events deliver each to exactly one audit instance in the cluster, which stores it.
 * Records older than AUDIT_RETENTION_DAYS are swept hourly.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service } from "moleculer";
import { storageMixin, type StorageThis } from "../mixins/db.mixin";
import { COLLECTIONS } from "../src/storage/collections";
import { appConfig } from "../src/platform/app-config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import type { Filter } from "../src/storage/entity-store";
import { EVENTS, type AuditEntry } from "../src/types";

const SWEEP_INTERVAL_MS = 3600_000;

interface AuditThis extends Service, StorageThis<AuditEntry> {
	sweepTimer?: NodeJS.Timeout;
	sweep(): Promise<void>;
}

interface AuditQuery {
	limit: number;
	offset: number;
	actor?: string;
	action?: string;
	result?: string;
	since?: string;
}

const AuditService: TypedServiceSchema<AuditThis> = {
	name: "audit",
	mixins: [
		storageMixin(COLLECTIONS.audit)
	],

	actions: {
		list: {
			access: { level: "admin" },
			params: {
				limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true },
				actor: { type: "string", optional: true },
				action: { type: "string", optional: true },
				result: { type: "enum", values: ["success", "failure"], optional: true },
				since: { type: "date", convert: true, optional: true }
			},
			async handler(this: AuditThis, ctx: Context<AuditQuery>) {
				const { limit, offset, actor, action, result, since } = ctx.params;
				const filter: Filter = {};
				if (actor) filter.actor = actor;
				if (action) filter.action = action;
				if (result) filter.result = result;
				if (since) filter.timestamp = { $gte: new Date(since).toISOString() };
				const [entries, total] = await Promise.all([
					this.store.find({ filter, sort: [["timestamp", -1]], limit, offset }),
					this.store.count(filter)
				]);
				return { entries, total, limit, offset };
			}
		}
	},

	events: {
		[EVENTS.audit]: {
			group: "audit",
			async handler(this: AuditThis, ctx: Context<Omit<AuditEntry, "id">>) {
				await this.store.insert({ id: randomUUID(), ...ctx.params });
			}
		}
	},

	methods: {
		async sweep(this: AuditThis) {
			const days = appConfig(this.broker).auditRetentionDays;
			const cutoff = new Date(Date.now() - days * 24 * 3600_000).toISOString();
			const removed = await this.store.removeMany({ timestamp: { $lt: cutoff } });
			if (removed) this.logger.info({ removed, cutoff }, "audit retention sweep");
		}
	},

	started(this: AuditThis) {
		void this.sweep().catch(err => this.logger.warn({ err }, "audit sweep failed"));
		this.sweepTimer = setInterval(() => void this.sweep().catch(err => this.logger.warn({ err }, "audit sweep failed")), SWEEP_INTERVAL_MS);
		this.sweepTimer.unref();
	},

	stopped(this: AuditThis) {
		clearInterval(this.sweepTimer);
	}
};

export default AuditService;
