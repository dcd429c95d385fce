/**
 * PostgreSQL. A row is `id` + one column per queryable field (indexed) + `doc`, the whole entity as
 * JSONB, so entities keep exactly the shape they have on the document adapters. The tables and
 * indexes are the Sequelize model moleculer-db-adapter-sequelize syncs at start; the queries run on
 * plain `pg` (pg-pool.ts), the writes of each event-loop turn batched (pg-group-commit.ts).
 */
import SqlAdapter from "moleculer-db-adapter-sequelize";
import type { Pool } from "pg";
import { DataTypes, QueryTypes, type Model, type ModelStatic, type Sequelize } from "sequelize";
import {
	checkFindOptions, DuplicateKeyError, withoutUndefined,
	type CollectionSpec, type EntityStore, type FieldType, type Filter, type FindOptions
} from "./entity-store";
import { PgGroupCommit } from "./pg-group-commit";
import { acquirePool, releasePool } from "./pg-pool";
import type { StorageAdapter, StoreContext } from "./storage-adapter";

export const postgresStorage: StorageAdapter = {
	name: "postgres",
	// The adapter passes all its arguments on to `new Sequelize(...)`; its typings show only one. It only syncs the schema.
	createDbAdapter: config =>
		new (SqlAdapter as unknown as new (...args: unknown[]) => object)(config.databaseUrl!, { logging: false, pool: { max: 2, idle: 1000 } }),
	createStore: async <T extends object>(spec: CollectionSpec, _adapter: unknown, { config, logger }: StoreContext) => {
		const url = config.databaseUrl!;
		const pool = acquirePool(url, err => logger.warn({ err: err.message }, "PostgreSQL dropped an idle connection (pg replaces it)"));
		return new SqlStore<T>(spec, pool, () => releasePool(url));
	}
};

const COLUMN_TYPES: Record<FieldType, DataTypes.DataType> = {
	string: DataTypes.STRING,
	number: DataTypes.DOUBLE,
	boolean: DataTypes.BOOLEAN
};

const SQL_TYPES: Record<FieldType, string> = { string: "VARCHAR(255)", number: "DOUBLE PRECISION", boolean: "BOOLEAN" };

/**
 * A table made before a field became queryable lacks its column, and Sequelize's sync (which only
 * creates missing tables and indexes) would fail on the index that names it: before the sync, each
 * missing column is added and filled from the rows' documents. Safe when several nodes start at once.
 */
async function addMissingColumns(db: Sequelize, spec: CollectionSpec): Promise<void> {
	const present = await db.query<{ column_name: string }>(
		"SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
		{ bind: [spec.name], type: QueryTypes.SELECT }
	);
	if (!present.length) return;
	const have = new Set(present.map(c => c.column_name));
	for (const [field, type] of Object.entries(spec.queryable)) {
		if (have.has(field)) continue;
		await db.query(`ALTER TABLE "${spec.name}" ADD COLUMN IF NOT EXISTS "${field}" ${SQL_TYPES[type]}`);
		await db.query(`UPDATE "${spec.name}" SET "${field}" = ("doc"->>'${field}')::${SQL_TYPES[type]} WHERE "doc" ? '${field}'`);
	}
}

/** The model definition moleculer-db-adapter-sequelize expects in the service schema (`model`). */
export function sqlModelDefinition(spec: CollectionSpec) {
	const define: Record<string, unknown> = {
		id: { type: DataTypes.STRING, primaryKey: true },
		doc: { type: DataTypes.JSONB, allowNull: false }
	};
	for (const [field, type] of Object.entries(spec.queryable)) define[field] = { type: COLUMN_TYPES[type] };
	return {
		name: spec.name,
		define,
		options: {
			tableName: spec.name,
			timestamps: false,
			indexes: spec.indexes.map(fields => ({ fields: fields.map(f => (f === spec.idField ? "id" : f)) })),
			hooks: {
				async beforeSync(this: ModelStatic<Model>) {
					await addMissingColumns(this.sequelize!, spec);
				}
			}
		}
	};
}

const SQL_OPERATORS = { $ne: "<>", $lt: "<", $lte: "<=", $gt: ">", $gte: ">=" } as const;

/** Builds SQL with every value as a bind parameter: user data never enters the statement text. */
class Statement {
	readonly bind: unknown[] = [];
	param(value: unknown): string {
		this.bind.push(value);
		return `$${this.bind.length}`;
	}
}

type Row = { doc: Record<string, unknown> };

/** Expected values a batched compare-and-set can carry: equality or null, no operators. */
const isEquality = (expected: Filter) => Object.values(expected).every(value => value === null || typeof value !== "object");

export class SqlStore<T extends object> implements EntityStore<T> {
	private readonly table: string;
	private readonly writes: PgGroupCommit;

	constructor(readonly spec: CollectionSpec, private readonly pool: Pool, private readonly release: () => Promise<void>) {
		this.table = `"${spec.name}"`;
		this.writes = new PgGroupCommit(pool, { table: spec.name, queryable: spec.queryable });
	}

	private column(field: string): string {
		return `"${field === this.spec.idField ? "id" : field}"`;
	}

	private where(statement: Statement, filter: Filter = {}): string {
		const terms: string[] = [];
		for (const [field, value] of Object.entries(filter)) {
			const col = this.column(field);
			if (value === null) terms.push(`${col} IS NULL`);
			else if (typeof value !== "object") terms.push(`${col} = ${statement.param(value)}`);
			else
				for (const [op, operand] of Object.entries(value)) {
					if (op === "$in") terms.push(`${col} = ANY(${statement.param(operand)})`);
					else if (op === "$ne" && operand === null) terms.push(`${col} IS NOT NULL`);
					else if (op === "$ne") terms.push(`(${col} IS NULL OR ${col} <> ${statement.param(operand)})`);
					else terms.push(`${col} ${SQL_OPERATORS[op as keyof typeof SQL_OPERATORS]} ${statement.param(operand)}`);
				}
		}
		return terms.length ? ` WHERE ${terms.join(" AND ")}` : "";
	}

	/** Column values mirrored out of the entity (or out of a change to it). */
	private columns(values: Record<string, unknown>): Record<string, unknown> {
		const cols: Record<string, unknown> = {};
		for (const field of Object.keys(this.spec.queryable)) if (field in values) cols[field] = values[field];
		return cols;
	}

	private async select(options: FindOptions, what: string): Promise<Record<string, unknown>[]> {
		const statement = new Statement();
		let sql = `SELECT ${what} FROM ${this.table}${this.where(statement, options.filter)}`;
		if (options.sort?.length)
			sql += ` ORDER BY ${options.sort.map(([f, dir]) => `${this.column(f)} ${dir === 1 ? "ASC" : "DESC"}`).join(", ")}`;
		if (options.limit) sql += ` LIMIT ${statement.param(options.limit)}`;
		if (options.offset) sql += ` OFFSET ${statement.param(options.offset)}`;
		return (await this.pool.query(sql, statement.bind)).rows;
	}

	/** The fields to merge into the document: `doc || patch` in one statement, no read-modify-write race. */
	private patchOf(changes: Partial<T>): Record<string, unknown> {
		const set = withoutUndefined(changes) as Record<string, unknown>;
		delete set[this.spec.idField];
		return set;
	}

	/** A compare-and-set with operators in what it expects: one statement of its own, not batched. */
	private async patchWhere(filter: Filter, set: Record<string, unknown>): Promise<Row[]> {
		const statement = new Statement();
		const assignments = [`"doc" = "doc" || ${statement.param(JSON.stringify(set))}::jsonb`];
		for (const [col, value] of Object.entries(this.columns(set))) assignments.push(`"${col}" = ${statement.param(value)}`);
		const sql = `UPDATE ${this.table} SET ${assignments.join(", ")}${this.where(statement, filter)} RETURNING 1`;
		return (await this.pool.query(sql, statement.bind)).rows;
	}

	async insert(entity: T): Promise<T> {
		const doc = withoutUndefined(entity) as Record<string, unknown>;
		const id = String(doc[this.spec.idField]);
		if (!(await this.writes.insert(id, doc))) throw new DuplicateKeyError(this.spec.name, id);
		return entity;
	}

	async get(id: string): Promise<T | null> {
		const [row] = await this.select({ filter: { [this.spec.idField]: id } }, '"doc"');
		return row ? (row.doc as T) : null;
	}

	async find(options: FindOptions = {}): Promise<T[]> {
		checkFindOptions(this.spec, options);
		return (await this.select(options, '"doc"')).map(row => row.doc as T);
	}

	async count(filter: Filter = {}): Promise<number> {
		checkFindOptions(this.spec, { filter });
		const [row] = await this.select({ filter }, "COUNT(*)::int AS n");
		return Number(row.n);
	}

	async update(id: string, changes: Partial<T>): Promise<T | null> {
		return ((await this.writes.update(id, this.patchOf(changes), {}, true)) as T | null) ?? null;
	}

	async updateIf(id: string, expected: Filter, changes: Partial<T>): Promise<boolean> {
		checkFindOptions(this.spec, { filter: expected });
		const { [this.spec.idField]: _id, ...compared } = expected;
		if (!isEquality(compared)) return (await this.patchWhere({ ...compared, [this.spec.idField]: id }, this.patchOf(changes))).length > 0;
		return (await this.writes.update(id, this.patchOf(changes), compared, false)) === true;
	}

	async remove(id: string): Promise<boolean> {
		return (await this.removeMany({ [this.spec.idField]: id })) > 0;
	}

	async removeMany(filter: Filter): Promise<number> {
		checkFindOptions(this.spec, { filter });
		const statement = new Statement();
		return (await this.pool.query(`DELETE FROM ${this.table}${this.where(statement, filter)}`, statement.bind)).rowCount ?? 0;
	}

	async ping(): Promise<void> {
		await this.pool.query("SELECT 1");
	}

	async close(): Promise<void> {
		await this.writes.drained();
		await this.release();
	}
}
