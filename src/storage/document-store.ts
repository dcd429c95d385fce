/**
 * NeDB and MongoDB share a query language: one store over both. Documents keep the entity as is,
 * with `_id` = the entity id (a string, never an ObjectID, so ids look the same on every adapter).
 */
import {
	checkFindOptions, DuplicateKeyError, withoutUndefined,
	type CollectionSpec, type EntityStore, type Filter, type FindOptions
} from "./entity-store";
import { escapeKeys, unescapeKeys } from "./key-escaping";

type Doc = Record<string, unknown> & { _id?: unknown };

/** The few driver calls the store needs, implemented by `nedbDriver` and `mongoDriver`. */
export interface DocumentDriver {
	insert(doc: Doc): Promise<void>;
	findOne(query: Doc): Promise<Doc | null>;
	find(query: Doc, sort: Record<string, 1 | -1>, offset: number, limit: number): Promise<Doc[]>;
	count(query: Doc): Promise<number>;
	/** Returns how many documents matched. */
	updateOne(query: Doc, set: Doc): Promise<number>;
	removeMany(query: Doc): Promise<number>;
	/** Rewrites the store's file without what was removed (NeDB); drivers without files leave it out. */
	compact?(): Promise<void>;
	createIndex(fields: string[]): Promise<void>;
	isDuplicateKey(err: unknown): boolean;
	ping(): Promise<void>;
}

export class DocumentStore<T extends object> implements EntityStore<T> {
	constructor(readonly spec: CollectionSpec, private readonly driver: DocumentDriver) {}

	async ensureIndexes(): Promise<void> {
		for (const fields of this.spec.indexes) await this.driver.createIndex(fields);
	}

	private toEntity(doc: Doc | null): T | null {
		if (!doc) return null;
		const { _id, ...rest } = doc;
		return { ...(unescapeKeys(rest) as object), [this.spec.idField]: _id } as T;
	}

	private query(filter: Filter = {}): Doc {
		const query: Doc = {};
		for (const [field, value] of Object.entries(filter)) query[field === this.spec.idField ? "_id" : field] = value;
		return query;
	}

	private changesDoc(changes: Partial<T>): Doc {
		const set = escapeKeys(withoutUndefined(changes)) as Doc;
		delete set[this.spec.idField];
		delete set._id;
		return set;
	}

	async insert(entity: T): Promise<T> {
		const id = String((entity as Record<string, unknown>)[this.spec.idField]);
		const doc = { ...(escapeKeys(withoutUndefined(entity)) as object), _id: id } as Doc;
		delete doc[this.spec.idField];
		try {
			await this.driver.insert(doc);
		} catch (err) {
			if (this.driver.isDuplicateKey(err)) throw new DuplicateKeyError(this.spec.name, id);
			throw err;
		}
		return entity;
	}

	async get(id: string): Promise<T | null> {
		return this.toEntity(await this.driver.findOne({ _id: id }));
	}

	async find(options: FindOptions = {}): Promise<T[]> {
		checkFindOptions(this.spec, options);
		const sort: Record<string, 1 | -1> = {};
		for (const [field, dir] of options.sort ?? []) sort[field === this.spec.idField ? "_id" : field] = dir;
		const docs = await this.driver.find(this.query(options.filter), sort, options.offset ?? 0, options.limit ?? 0);
		return docs.map(doc => this.toEntity(doc) as T);
	}

	async count(filter: Filter = {}): Promise<number> {
		checkFindOptions(this.spec, { filter });
		return this.driver.count(this.query(filter));
	}

	async update(id: string, changes: Partial<T>): Promise<T | null> {
		const set = this.changesDoc(changes);
		if (Object.keys(set).length > 0 && (await this.driver.updateOne({ _id: id }, set)) === 0) return null;
		return this.get(id);
	}

	async updateIf(id: string, expected: Filter, changes: Partial<T>): Promise<boolean> {
		checkFindOptions(this.spec, { filter: expected });
		return (await this.driver.updateOne({ ...this.query(expected), _id: id }, this.changesDoc(changes))) > 0;
	}

	async remove(id: string): Promise<boolean> {
		return (await this.driver.removeMany({ _id: id })) > 0;
	}

	async removeMany(filter: Filter): Promise<number> {
		checkFindOptions(this.spec, { filter });
		return this.driver.removeMany(this.query(filter));
	}

	async compact(): Promise<void> {
		await this.driver.compact?.();
	}

	ping(): Promise<void> {
		return this.driver.ping();
	}
}
