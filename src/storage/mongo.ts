/** MongoDB (`MONGODB_URI`) through moleculer-db-adapter-mongo, as a `DocumentStore`. */
import MongoAdapter from "moleculer-db-adapter-mongo";
import { DocumentStore, type DocumentDriver } from "./document-store";
import type { CollectionSpec } from "./entity-store";
import type { DbAdapter, StorageAdapter } from "./storage-adapter";

export const mongoStorage: StorageAdapter = {
	name: "mongo",
	createDbAdapter: config => new MongoAdapter(config.mongodbUri!),
	async createStore<T extends object>(spec: CollectionSpec, adapter: DbAdapter) {
		const store = new DocumentStore<T>(spec, mongoDriver(adapter.collection as MongoCollection, adapter.db as MongoDb));
		await store.ensureIndexes();
		return store;
	}
};

type Doc = Record<string, unknown>;
/** The slice of the mongodb 3.x driver's Collection this store uses. */
export interface MongoCollection {
	insertOne(doc: Doc): Promise<unknown>;
	findOne(query: Doc): Promise<Doc | null>;
	find(query: Doc): { sort(s: Doc): { skip(n: number): { limit(n: number): { toArray(): Promise<Doc[]> } } } };
	countDocuments(query: Doc): Promise<number>;
	updateOne(query: Doc, update: Doc): Promise<{ matchedCount: number }>;
	deleteMany(query: Doc): Promise<{ deletedCount?: number }>;
	createIndex(spec: Doc): Promise<unknown>;
}
export interface MongoDb {
	command(cmd: Doc): Promise<unknown>;
}

export function mongoDriver(collection: MongoCollection, db: MongoDb): DocumentDriver {
	return {
		async insert(doc) {
			await collection.insertOne(doc);
		},
		findOne: query => collection.findOne(query),
		find: (query, sort, offset, limit) => collection.find(query).sort(sort).skip(offset).limit(limit).toArray(),
		count: query => collection.countDocuments(query),
		async updateOne(query, set) {
			return (await collection.updateOne(query, { $set: set })).matchedCount;
		},
		async removeMany(query) {
			return (await collection.deleteMany(query)).deletedCount ?? 0;
		},
		async createIndex(fields) {
			await collection.createIndex(Object.fromEntries(fields.map(f => [f, 1])));
		},
		isDuplicateKey: err => (err as { code?: number })?.code === 11000,
		async ping() {
			await db.command({ ping: 1 });
		}
	};
}
