/**
 * Storage mixin: moleculer-db with the adapter the configuration picks
 * (MONGODB_URI → MongoDB, DATABASE_URL → PostgreSQL, else NeDB files under DATA_DIR),
 * exposed to the service as one typed `EntityStore` (`this.store`).
 * moleculer-db's generic CRUD actions are switched off: every change goes through the owning actor.
 */
import fs from "node:fs";
import path from "node:path";
import type { Service, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import MongoAdapter from "moleculer-db-adapter-mongo";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import { appConfig } from "../src/platform/app-config";
import type { AppConfig } from "../src/platform/config";
import { DocumentStore } from "../src/storage/document-store";
import type { CollectionSpec, EntityStore } from "../src/storage/entity-store";
import { mongoDriver, type MongoCollection, type MongoDb } from "../src/storage/mongo-driver";
import { nedbDriver } from "../src/storage/nedb-driver";
import { SqlStore, sqlModelDefinition } from "../src/storage/sql-store";

export interface StorageThis<T extends object> {
	store: EntityStore<T>;
}

interface DbServiceThis extends Service {
	adapter: { init(broker: unknown, service: unknown): void } & Record<string, any>;
}

function createAdapter(config: AppConfig, spec: CollectionSpec) {
	switch (config.storage) {
		case "mongo":
			return new MongoAdapter(config.mongodbUri!);
		case "postgres":
			// The adapter passes all its arguments on to `new Sequelize(...)`; its typings show only one.
			return new (SqlAdapter as unknown as new (...args: unknown[]) => object)(config.databaseUrl!, {
				logging: false,
				pool: { max: 5 }
			});
		case "nedb":
			fs.mkdirSync(config.dataDir, { recursive: true });
			return new DbService.MemoryAdapter({ filename: path.join(config.dataDir, `${spec.name}.db`) });
	}
}

function createStore<T extends object>(config: AppConfig, spec: CollectionSpec, adapter: Record<string, any>): EntityStore<T> {
	switch (config.storage) {
		case "mongo":
			return new DocumentStore<T>(spec, mongoDriver(adapter.collection as MongoCollection, adapter.db as MongoDb));
		case "postgres":
			return new SqlStore<T>(spec, adapter.model, adapter.db);
		case "nedb":
			return new DocumentStore<T>(spec, nedbDriver(adapter.db));
	}
}

const DISABLED_DB_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

export function storageMixin(spec: CollectionSpec): Partial<ServiceSchema> {
	return {
		mixins: [DbService as unknown as Partial<ServiceSchema>],
		// Read by moleculer-db-adapter-mongo (collection) and -sequelize (model) at connect time.
		collection: spec.name,
		model: sqlModelDefinition(spec),
		settings: { idField: spec.idField },
		actions: Object.fromEntries(DISABLED_DB_ACTIONS.map(name => [name, false])),
		created(this: DbServiceThis) {
			// Built per broker here, not in the schema, so one schema serves several brokers in one process.
			this.adapter = createAdapter(appConfig(this.broker), spec) as DbServiceThis["adapter"];
			this.adapter.init(this.broker, this);
		},
		async afterConnected(this: DbServiceThis & StorageThis<object>) {
			const config = appConfig(this.broker);
			this.store = createStore(config, spec, this.adapter);
			if (this.store instanceof DocumentStore) await this.store.ensureIndexes();
		}
	} as unknown as Partial<ServiceSchema>;
}
