/**
 * Pipeline definitions for the pipelines service: the `create` and `list` actions and
 * `pipelineOf(id)`. The storage mixin gives a service one collection; definitions live in a second
 * one, held by a private companion service (no actions) that this mixin creates and owns.
 * Definitions never change once created, so each is read from the store once per node.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { validatePipeline } from "../src/domain/pipelines/dag";
import { invalid, notFound } from "../src/platform/errors";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { principalOf } from "../src/platform/trust";
import { idempotentId, newId } from "../src/runtime/ids";
import type { ReadCache } from "../src/runtime/read-cache";
import { COLLECTIONS } from "../src/storage/collections";
import { DuplicateKeyError, type EntityStore } from "../src/storage/entity-store";
import type { Pipeline, Principal } from "../src/types";
import { storageMixin, type StorageThis } from "./db.mixin";

const DEFINITIONS_HOST = "pipeline-definitions";
type DefinitionsHost = Service & StorageThis<Pipeline>;

export interface DefinitionsThis extends Service {
	/** The storage mixin's: this node's read cache (the definitions host's writes clear it too). */
	reads: ReadCache;
	pipelineCache: Map<string, Pipeline>;
	definitionsHost: DefinitionsHost;
	definitionsReady: Promise<void>;
	definitions(): Promise<EntityStore<Pipeline>>;
	pipelineOf(id: string): Promise<Pipeline>;
}

const schema: TypedServiceSchema<DefinitionsThis> = {
	name: "pipelines",
	actions: {
		create: {
			access: { level: "operate" },
			// The whole body is checked by the dag's validator, which names every problem (cycles, indices, types).
			async handler(this: DefinitionsThis, ctx: Context<unknown, { user?: Principal | null; idempotencyKey?: string }>): Promise<Pipeline> {
				const checked = validatePipeline(ctx.params);
				if (!checked.ok) throw invalid(checked.errors);
				const key = ctx.meta.idempotencyKey;
				const now = new Date().toISOString();
				const by = principalOf(ctx);
				const pipeline: Pipeline = {
					pipeline_id: key ? idempotentId("pipeline", [by?.sub ?? "anonymous"], key) : newId("pipeline"),
					created_by: by?.sub ?? null,
					...checked.value,
					created_at: now,
					updated_at: now
				};
				try {
					await (await this.definitions()).insert(pipeline);
				} catch (err) {
					if (!(err instanceof DuplicateKeyError)) throw err;
					return this.pipelineOf(pipeline.pipeline_id);
				}
				this.pipelineCache.set(pipeline.pipeline_id, pipeline);
				return pipeline;
			}
		},

		list: {
			access: { level: "read" },
			params: {
				limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true },
				offset: { type: "number", integer: true, min: 0, default: 0, convert: true }
			},
			async handler(this: DefinitionsThis, ctx: Context<{ limit: number; offset: number }>) {
				const { limit, offset } = ctx.params;
				return this.reads.read(`pipelines.list:${limit}:${offset}`, async () => {
					const store = await this.definitions();
					const [pipelines, total] = await Promise.all([store.find({ sort: [["created_at", -1]], limit, offset }), store.count()]);
					return { pipelines, total, limit, offset };
				});
			}
		}
	},

	methods: {
		async definitions(this: DefinitionsThis) {
			await this.definitionsReady;
			return this.definitionsHost.store;
		},

		async pipelineOf(this: DefinitionsThis, id: string) {
			const cached = this.pipelineCache.get(id);
			if (cached) return cached;
			const pipeline = await (await this.definitions()).get(id);
			if (!pipeline) throw notFound("Pipeline", id);
			this.pipelineCache.set(id, pipeline);
			return pipeline;
		}
	},

	created(this: DefinitionsThis) {
		this.pipelineCache = new Map();
		let markReady: () => void = () => undefined;
		this.definitionsReady = new Promise(resolve => (markReady = resolve));
		// Started by the broker with every other local service; its `started` runs once the store is open.
		this.definitionsHost = this.broker.createService({
			name: DEFINITIONS_HOST,
			mixins: [storageMixin(COLLECTIONS.pipelines)],
			started() {
				markReady();
			}
		}) as DefinitionsHost;
	},

	async started(this: DefinitionsThis) {
		await this.definitionsReady;
	},

	async stopped(this: DefinitionsThis) {
		// Destroyed alone (hot reload) rather than with the broker: take the companion along, or the next instance would find two.
		if (!this.broker.stopping) await this.broker.destroyService(this.definitionsHost).catch(() => undefined);
	}
};

export const pipelineDefinitionsMixin = schema as unknown as Partial<ServiceSchema>;
