/**
 * The one storage contract every service uses, whatever the adapter underneath
 * (NeDB files, MongoDB, PostgreSQL). Entities are plain JSON objects with a string id.
 * Only fields declared `queryable` in the collection spec may appear in filters and sorts,
 * so that every adapter can index them and answer the same way.
 */
export type Scalar = string | number | boolean | null;
export interface FieldOperators {
	$in?: Scalar[];
	$ne?: Scalar;
	$lt?: Scalar;
	$lte?: Scalar;
	$gt?: Scalar;
	$gte?: Scalar;
}
export type FieldFilter = Scalar | FieldOperators;
export type Filter = Record<string, FieldFilter>;
export type SortOrder = Array<[field: string, direction: 1 | -1]>;

export interface FindOptions {
	filter?: Filter;
	sort?: SortOrder;
	limit?: number;
	offset?: number;
}

export type FieldType = "string" | "number" | "boolean";

export interface CollectionSpec {
	/** Collection / table name. */
	name: string;
	/** The entity's id field on the wire (`id`, `task_id`, ...). */
	idField: string;
	/** Top-level fields that filters and sorts may use, with their type. */
	queryable: Record<string, FieldType>;
	/** Compound indexes for the queries the service makes. */
	indexes: string[][];
}

export interface EntityStore<T extends object> {
	readonly spec: CollectionSpec;
	/** Throws `DuplicateKeyError` when the id exists. */
	insert(entity: T): Promise<T>;
	get(id: string): Promise<T | null>;
	find(options?: FindOptions): Promise<T[]>;
	count(filter?: Filter): Promise<number>;
	/** Sets the given fields; returns the entity after the change, or null when it does not exist. */
	update(id: string, changes: Partial<T>): Promise<T | null>;
	/**
	 * Compare-and-set: applies `changes` only if the stored entity still matches `expected`.
	 * True when it changed. This is the guard that keeps several nodes from double-claiming.
	 */
	updateIf(id: string, expected: Filter, changes: Partial<T>): Promise<boolean>;
	remove(id: string): Promise<boolean>;
	/**
	 * Removes every entity matching `filter` in one statement: how many went. With the id field
	 * `$in` a list and the other fields as conditions, a batch removal that re-checks each row.
	 */
	removeMany(filter: Filter): Promise<number>;
	/** Gives back the space of removed entities where the store keeps it (NeDB rewrites its append-only file); elsewhere absent. */
	compact?(): Promise<void>;
	/** Reachability check for `/ready`. */
	ping(): Promise<void>;
	/** Commits what is gathered and lets go of connections the store holds of its own. */
	close?(): Promise<void>;
}

export class DuplicateKeyError extends Error {
	constructor(readonly collection: string, readonly id: string) {
		super(`${collection}: '${id}' exists`);
		this.name = "DuplicateKeyError";
	}
}

/** Inserts `entity`: true, or false when its id exists already (a retried or idempotent submission). */
export async function insertNew<T extends object>(store: EntityStore<T>, entity: T): Promise<boolean> {
	try {
		await store.insert(entity);
		return true;
	} catch (err) {
		if (err instanceof DuplicateKeyError) return false;
		throw err;
	}
}

/** Rejects filters and sorts on undeclared fields: a programming error, caught by the contract tests. */
export function assertQueryable(spec: CollectionSpec, fields: Iterable<string>): void {
	for (const field of fields) {
		if (field !== spec.idField && !(field in spec.queryable))
			throw new Error(`${spec.name}: field '${field}' is not queryable`);
	}
}

export function checkFindOptions(spec: CollectionSpec, options: FindOptions): void {
	assertQueryable(spec, Object.keys(options.filter ?? {}));
	assertQueryable(spec, (options.sort ?? []).map(([field]) => field));
}

/** JSON has no `undefined`: drop such keys so every adapter stores the same document. */
export function withoutUndefined<T extends object>(value: T): Partial<T> {
	const out: Record<string, unknown> = {};
	for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
	return out as Partial<T>;
}
