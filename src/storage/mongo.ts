/**
 * MongoDB (`MONGODB_URI`): a small moleculer-db adapter on the official driver (mongodb 6), and a
 * `DocumentStore` over the collection it opens.
 *
 * moleculer-db-adapter-mongo is not used: it pins the 3.x driver, whose support ends at MongoDB 6.0,
 * and it cannot take a newer one (it calls `Db#on` and reads `insertOne`'s `ops`, both gone since 4.0).
 * moleculer-db asks an adapter for its lifecycle (`init`, `connect` — retried every second while it
 * fails —, `disconnect`); its generic CRUD actions are switched off (mixins/db.mixin.ts), so every read
 * and write goes through the `EntityStore` below, and the adapter has nothing else to implement.
 */
import type { Service, ServiceBroker } from "moleculer";
import { MongoClient, type Collection, type Db, type Filter } from "mongodb";
import { DocumentStore, type DocumentDriver } from "./document-store";
import type { CollectionSpec } from "./entity-store";
import type { DbAdapter, StorageAdapter } from "./storage-adapter";

type Doc = Record<string, unknown>;
/** What the store keeps: the entity's fields, and its id as a string `_id` (never an ObjectId). */
type StoredDoc = { _id: string } & Doc;
/** The document store builds its queries from the checked `Filter` of entity-store.ts, in the query language MongoDB shares with NeDB. */
const asFilter = (query: Doc) => query as Filter<StoredDoc>;

/** One service's connection: a `MongoClient` for the URI (its database is the URI's path, or `test`), one collection. */
export class MongoDbAdapter {
	client?: MongoClient;
	db?: Db;
	collection?: Collection<StoredDoc>;
	private service?: Service;

	constructor(private readonly uri: string, private readonly collectionName: string) {}

	init(_broker: ServiceBroker, service: Service): void {
		this.service = service;
	}

	async connect(): Promise<void> {
		const client = new MongoClient(this.uri, { appName: "mcp-server" });
		try {
			await client.connect();
		} catch (err) {
			// moleculer-db tries again with a new connect(): let go of this client's sockets and timers first.
			await client.close().catch(() => undefined);
			throw err;
		}
		this.client = client;
		this.db = client.db();
		this.collection = this.db.collection<StoredDoc>(this.collectionName);
		this.service?.logger.info(`MongoDB: connected (database '${this.db.databaseName}', collection '${this.collectionName}').`);
	}

	async disconnect(): Promise<void> {
		const client = this.client;
		this.client = this.db = this.collection = undefined;
		await client?.close();
	}
}

export const mongoStorage: StorageAdapter = {
	name: "mongo",
	createDbAdapter: (config, spec) => new MongoDbAdapter(config.mongodbUri!, spec.name),
	async createStore<T extends object>(spec: CollectionSpec, adapter: DbAdapter) {
		const { collection, db } = adapter as unknown as MongoDbAdapter;
		if (!collection || !db) throw new Error(`MongoDB: ${spec.name} is not connected`);
		const store = new DocumentStore<T>(spec, mongoDriver(collection, db));
		await store.ensureIndexes();
		return store;
	}
};

/** MongoDB's duplicate key error (E11000), from an insert whose `_id` exists. */
const DUPLICATE_KEY = 11000;

export function mongoDriver(collection: Collection<StoredDoc>, db: Db): DocumentDriver {
	return {
		async insert(doc) {
			await collection.insertOne(doc as StoredDoc);
		},
		findOne: query => collection.findOne(asFilter(query)),
		find: (query, sort, offset, limit) => collection.find(asFilter(query)).sort(sort).skip(offset).limit(limit).toArray(),
		count: query => collection.countDocuments(asFilter(query)),
		async updateOne(query, set) {
			return (await collection.updateOne(asFilter(query), { $set: set as Partial<StoredDoc> })).matchedCount;
		},
		async removeMany(query) {
			return (await collection.deleteMany(asFilter(query))).deletedCount;
		},
		async createIndex(fields) {
			await collection.createIndex(Object.fromEntries(fields.map(f => [f, 1 as const])));
		},
		isDuplicateKey: err => (err as { code?: unknown } | null)?.code === DUPLICATE_KEY,
		async ping() {
			await db.command({ ping: 1 });
		}
	};
}
