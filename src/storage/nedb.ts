/**
 * The embedded store: NeDB files under DATA_DIR, through moleculer-db's MemoryAdapter, as a
 * `DocumentStore` (the query language it shares with MongoDB) with group commit.
 *
 * The files are this user's only (0600, DATA_DIR 0700): the MemoryAdapter hands its options to
 * NeDB's Datastore as they are, whose `modes` apply to every file it creates, the compaction's
 * temporary file (renamed over the data file at every load) included.
 */
import path from "node:path";
import type Datastore from "@seald-io/nedb";
import DbService from "moleculer-db";
import { DocumentStore, type DocumentDriver } from "./document-store";
import { decodeNestedArrays, encodeNestedArrays } from "./nedb-arrays";
import { NedbGroupCommit } from "./nedb-group-commit";
import type { CollectionSpec } from "./entity-store";
import type { DbAdapter, StorageAdapter } from "./storage-adapter";
import { DATA_DIR_MODE, DATA_FILE_MODE, ensureDataDir } from "../platform/secrets";

const NEDB_MODES = { fileMode: DATA_FILE_MODE, dirMode: DATA_DIR_MODE };

export const nedbStorage: StorageAdapter = {
	name: "nedb",
	createDbAdapter(config, spec) {
		ensureDataDir(config.dataDir);
		return new DbService.MemoryAdapter({ filename: path.join(config.dataDir, `${spec.name}.db`), modes: NEDB_MODES });
	},
	async createStore<T extends object>(spec: CollectionSpec, adapter: DbAdapter) {
		const store = new DocumentStore<T>(spec, nedbDriver(adapter.db as Datastore));
		await store.ensureIndexes();
		return store;
	}
};

export function nedbDriver(db: Datastore): DocumentDriver {
	const commit = new NedbGroupCommit((db as unknown as { persistence: ConstructorParameters<typeof NedbGroupCommit>[0] }).persistence);
	return {
		// Arrays below the top-level fields are stored as objects: NeDB's check of a document costs 2^depth on nested arrays (nedb-arrays.ts).
		async insert(doc) {
			await db.insertAsync(encodeNestedArrays(doc));
			await commit.flushed();
		},
		async findOne(query) {
			const doc = (await db.findOneAsync(query)) as Record<string, unknown> | null;
			return doc && decodeNestedArrays(doc);
		},
		async find(query, sort, offset, limit) {
			let cursor = db.findAsync(query).sort(sort).skip(offset);
			if (limit > 0) cursor = cursor.limit(limit);
			return ((await cursor.execAsync()) as Record<string, unknown>[]).map(decodeNestedArrays);
		},
		count: query => db.countAsync(query) as unknown as Promise<number>,
		async updateOne(query, set) {
			const { numAffected } = await db.updateAsync(query, { $set: encodeNestedArrays(set) }, {});
			if (numAffected) await commit.flushed();
			return numAffected;
		},
		async removeMany(query) {
			const removed = await db.removeAsync(query, { multi: true });
			if (removed) await commit.flushed();
			return removed;
		},
		// The file is append-only: removed documents are lines that stay until it is rewritten from memory
		// (in the executor, after every operation queued before it; the appends in flight concern documents it writes anyway).
		compact: () => db.compactDatafileAsync(),
		async createIndex() {
			// Deliberately none beyond `_id`: NeDB keeps all documents sharing a key value in one array, so an
			// index on a low-cardinality field (status, agent) makes every status change O(documents). Every hot
			// path here goes by id; filtered listings scan, which the embedded single-machine store can afford.
		},
		isDuplicateKey: err => (err as { errorType?: string })?.errorType === "uniqueViolated",
		async ping() {}
	};
}
