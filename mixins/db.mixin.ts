/**
 * Storage mixin: moleculer-db with the adapter the configuration names (src/storage/index.ts),
 * exposed to the service as one typed `EntityStore` (`this.store`), whose writes clear the node's
 * read cache (`this.reads`, src/runtime/read-cache.ts).
 * moleculer-db's generic CRUD actions are switched off: every change goes through the owning actor.
 */
import type { Service, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import { nodeConfig } from "../src/platform/app-config";
import type { CollectionSpec, EntityStore } from "../src/storage/entity-store";
import { readCacheOf, type ReadCache } from "../src/runtime/read-cache";
import { resolveStorage } from "../src/storage";
import { sqlModelDefinition } from "../src/storage/postgres";
import type { DbAdapter } from "../src/storage/storage-adapter";

export interface StorageThis<T extends object> {
	store: EntityStore<T>;
	/** Answers of reads, until the next write to a store of this node. */
	reads: ReadCache;
}

interface DbServiceThis extends Service {
	adapter: DbAdapter;
}

const DISABLED_DB_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

export function storageMixin(spec: CollectionSpec): Partial<ServiceSchema> {
	return {
		mixins: [DbService as unknown as Partial<ServiceSchema>],
		// Read by moleculer-db-adapter-sequelize at connect time (the MongoDB adapter takes the name from the spec).
		model: sqlModelDefinition(spec),
		settings: { idField: spec.idField },
		actions: Object.fromEntries(DISABLED_DB_ACTIONS.map(name => [name, false])),
		created(this: DbServiceThis & StorageThis<object>) {
			this.reads = readCacheOf(this.broker);
			this.reads.storageServices.add(this.name);
			// Built per broker here, not in the schema, so one schema serves several brokers in one process.
			const config = nodeConfig(this.broker);
			this.adapter = resolveStorage(config.storage).createDbAdapter(config, spec) as DbAdapter;
			this.adapter.init(this.broker, this);
		},
		async afterConnected(this: DbServiceThis & StorageThis<object>) {
			const config = nodeConfig(this.broker);
			this.store = this.reads.watching(await resolveStorage(config.storage).createStore(spec, this.adapter, { config, logger: this.logger }));
		},
		async stopped(this: DbServiceThis & StorageThis<object>) {
			await this.store?.close?.();
		}
	} as unknown as Partial<ServiceSchema>;
}
