/**
 * One storage adapter: how a collection's moleculer-db adapter is made from the config, and the
 * `EntityStore` over it once connected. Chosen by name from the registry in `index.ts`.
 */
import type { Logger } from "moleculer";
import type { EnvConfig, StorageKind } from "../platform/config";
import type { CollectionSpec, EntityStore } from "./entity-store";

/** moleculer-db's adapter object; each store reads the driver handles it needs from it. */
export type DbAdapter = { init(broker: unknown, service: unknown): void } & Record<string, any>;

/** What a store may need beyond its adapter: the node's configuration, a logger. */
export interface StoreContext {
	config: EnvConfig;
	logger: Logger;
}

export interface StorageAdapter {
	readonly name: StorageKind;
	createDbAdapter(config: EnvConfig, spec: CollectionSpec): object;
	/** After moleculer-db connected the adapter: indexes made, ready for use. */
	createStore<T extends object>(spec: CollectionSpec, adapter: DbAdapter, context: StoreContext): Promise<EntityStore<T>>;
}
