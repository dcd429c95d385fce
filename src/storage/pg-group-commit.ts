/**
 * Group commit for PostgreSQL. Each autocommitted statement waits for its WAL flush, so one row per
 * statement caps a node at what the disk flushes, however idle the CPU is. Here the writes of one
 * event-loop turn to one table are gathered and sent as few statements: every insert in one
 * `INSERT … SELECT FROM jsonb_to_recordset($1)`, every compare-and-set update of the same shape
 * (the same expected fields, the same columns changed) in one `UPDATE … FROM jsonb_to_recordset($1)`.
 * One parameter per statement, so the text is the same for every batch of a shape and PostgreSQL
 * parses it once per connection (a named prepared statement). Each caller still learns its own
 * outcome: an insert whose id existed, a compare-and-set that lost.
 *
 * - A write is acknowledged only after its statement committed: nothing is traded for durability.
 * - Two writes to the same row never share a batch: the later one waits for the earlier's commit,
 *   so writes to a row keep their order (an UPDATE … FROM joining one row twice would apply one).
 * - A batch that fails (a value too long for its column, say) is retried row by row, so only the
 *   writes at fault fail.
 */
import { createHash } from "node:crypto";
import type { Pool } from "pg";
import type { FieldType, Filter } from "./entity-store";

type Json = Record<string, unknown>;

/** Recordset column types: the table's VARCHAR(255) columns take text and check its length on assignment. */
const RECORD_TYPES: Record<FieldType, string> = { string: "text", number: "double precision", boolean: "boolean" };

/** Batches to one table in flight at once; writes meanwhile gather into the next ones. */
const MAX_IN_FLIGHT = 4;

export interface TableShape {
	table: string;
	/** The entity's queryable fields (each a column beside `id` and `doc`). */
	queryable: Record<string, FieldType>;
}

interface Write {
	id: string;
	settle(err: Error | null, result?: unknown): void;
}

interface InsertWrite extends Write {
	kind: "insert";
	doc: Json;
}

interface UpdateWrite extends Write {
	kind: "update";
	/** Top-level fields merged into the document (`doc || patch`), mirrored to their columns. */
	patch: Json;
	/** Fields the stored row must still have (equality, or null). */
	expected: Filter;
	/** The document after the change comes back (update), or only whether it applied (compare-and-set). */
	returning: boolean;
}

type PendingWrite = InsertWrite | UpdateWrite;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export class PgGroupCommit {
	private pending: PendingWrite[] = [];
	private readonly ids = new Set<string>();
	/** Writes to rows already in `pending`: they join a later batch. */
	private waiting: PendingWrite[] = [];
	private scheduled = false;
	private inFlight = 0;
	private readonly statements = new Map<string, { name: string; text: string }>();

	constructor(private readonly pool: Pool, private readonly shape: TableShape) {}

	/** True when the row was inserted; false when its id existed. */
	insert(id: string, doc: Json): Promise<boolean> {
		return this.enqueue<boolean>(settle => ({ kind: "insert", id, doc, settle }));
	}

	/** The document after the change when `returning`, else true; null (or false) when no row matched. */
	update(id: string, patch: Json, expected: Filter, returning: boolean): Promise<Json | boolean | null> {
		return this.enqueue(settle => ({ kind: "update", id, patch, expected, returning, settle }));
	}

	private enqueue<R>(make: (settle: Write["settle"]) => PendingWrite): Promise<R> {
		return new Promise<R>((resolve, reject) => {
			const write = make((err, result) => (err ? reject(err) : resolve(result as R)));
			if (this.ids.has(write.id)) this.waiting.push(write);
			else this.add(write);
		});
	}

	private add(write: PendingWrite): void {
		this.pending.push(write);
		this.ids.add(write.id);
		this.schedule();
	}

	private schedule(): void {
		if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || !this.pending.length) return;
		this.scheduled = true;
		// The rest of this event-loop turn joins the batch.
		setImmediate(() => {
			this.scheduled = false;
			void this.flush();
		});
	}

	private async flush(): Promise<void> {
		const batch = this.pending;
		this.pending = [];
		this.ids.clear();
		// Writes that waited on a row of this batch go into the next one, after it.
		const waited = this.waiting;
		this.waiting = [];
		for (const write of waited) (this.ids.has(write.id) ? this.waiting : this.pending).push(write), this.ids.add(write.id);
		this.inFlight++;
		try {
			await this.run(batch);
		} finally {
			this.inFlight--;
			this.schedule();
		}
	}

	private async run(batch: PendingWrite[]): Promise<void> {
		const inserts = batch.filter((w): w is InsertWrite => w.kind === "insert");
		const updates = new Map<string, UpdateWrite[]>();
		for (const write of batch) {
			if (write.kind !== "update") continue;
			const key = this.updateKey(write);
			updates.set(key, [...(updates.get(key) ?? []), write]);
		}
		// Inserts first: an update in the same batch is to another row, but keep submissions before changes.
		if (inserts.length) await this.settleAll(inserts, rows => this.insertRows(rows));
		await Promise.all([...updates.values()].map(group => this.settleAll(group, rows => this.updateRows(rows))));
	}

	/** Runs one statement for `writes`; if it fails, each write alone, so only the faulty ones fail. */
	private async settleAll<W extends PendingWrite>(writes: W[], statement: (writes: W[]) => Promise<Map<string, unknown>>): Promise<void> {
		try {
			const results = await statement(writes);
			for (const write of writes) {
				const result = results.get(write.id);
				if (write.kind === "insert") write.settle(null, result === write);
				else write.settle(null, result ?? (write.returning ? null : false));
			}
		} catch (err) {
			if (writes.length === 1) return writes[0].settle(err as Error);
			await Promise.all(writes.map(write => this.settleAll([write], statement)));
		}
	}

	private async insertRows(writes: InsertWrite[]): Promise<Map<string, unknown>> {
		const fields = Object.keys(this.shape.queryable);
		const statement = this.prepared("insert", () => {
			const columns = ["id", "doc", ...fields].map(quote).join(", ");
			const record = ["id text", "doc jsonb", ...fields.map(f => `${quote(f)} ${RECORD_TYPES[this.shape.queryable[f]]}`)].join(", ");
			return `INSERT INTO ${quote(this.shape.table)} (${columns}) SELECT ${columns} FROM jsonb_to_recordset($1::jsonb) AS x(${record}) ON CONFLICT ("id") DO NOTHING RETURNING "id"`;
		});
		// Two inserts of one id in a batch: the first decides; the second finds it there.
		const first = new Map<string, InsertWrite>();
		for (const write of writes) if (!first.has(write.id)) first.set(write.id, write);
		const rows = [...first.values()].map(({ id, doc }) => {
			const row: Json = { id, doc };
			for (const field of fields) if (field in doc) row[field] = doc[field];
			return row;
		});
		const result = await this.pool.query<{ id: string }>({ ...statement, values: [JSON.stringify(rows)] });
		const inserted = new Set(result.rows.map(row => row.id));
		// Only the first write of an id made its row; a later duplicate in the batch is told it existed.
		return new Map([...first.values()].filter(write => inserted.has(write.id)).map(write => [write.id, write]));
	}

	private updateKey(write: UpdateWrite): string {
		const columns = Object.keys(write.patch).filter(f => f in this.shape.queryable).sort();
		const expected = Object.entries(write.expected)
			.map(([field, value]) => `${field}${value === null ? "?null" : "?="}`)
			.sort();
		return `${write.returning ? "doc" : "n"}|${columns.join(",")}|${expected.join(",")}`;
	}

	private async updateRows(writes: UpdateWrite[]): Promise<Map<string, unknown>> {
		const [sample] = writes;
		const columns = Object.keys(sample.patch).filter(f => f in this.shape.queryable).sort();
		const expected = Object.entries(sample.expected).sort(([a], [b]) => a.localeCompare(b));
		const statement = this.prepared(`update|${this.updateKey(sample)}`, () => {
			const type = (field: string) => (field === "id" ? "text" : RECORD_TYPES[this.shape.queryable[field]]);
			const record = ["id text", "patch jsonb", ...columns.map(c => `${quote(`c_${c}`)} ${type(c)}`), ...expected.filter(([, v]) => v !== null).map(([f]) => `${quote(`e_${f}`)} ${type(f)}`)];
			const sets = ['"doc" = t."doc" || x."patch"', ...columns.map(c => `${quote(c)} = x.${quote(`c_${c}`)}`)];
			const where = ['t."id" = x."id"', ...expected.map(([f, v]) => (v === null ? `t.${quote(f)} IS NULL` : `t.${quote(f)} = x.${quote(`e_${f}`)}`))];
			return `UPDATE ${quote(this.shape.table)} AS t SET ${sets.join(", ")} FROM jsonb_to_recordset($1::jsonb) AS x(${record.join(", ")}) WHERE ${where.join(" AND ")} RETURNING t."id"${sample.returning ? ', t."doc"' : ""}`;
		});
		const rows = writes.map(({ id, patch, expected: wanted }) => {
			const row: Json = { id, patch };
			for (const c of columns) row[`c_${c}`] = patch[c];
			for (const [f, v] of Object.entries(wanted)) if (v !== null) row[`e_${f}`] = v;
			return row;
		});
		const result = await this.pool.query<{ id: string; doc?: Json }>({ ...statement, values: [JSON.stringify(rows)] });
		return new Map(result.rows.map(row => [row.id, sample.returning ? row.doc : true]));
	}

	/** A named prepared statement per shape: parsed once per connection, whatever the batch size. */
	private prepared(key: string, text: () => string): { name: string; text: string } {
		let statement = this.statements.get(key);
		if (!statement) {
			const sql = text();
			statement = { name: `mcp_${createHash("sha1").update(sql).digest("hex").slice(0, 20)}`, text: sql };
			this.statements.set(key, statement);
		}
		return statement;
	}

	/** Resolves once every write gathered so far has been committed or failed. */
	async drained(): Promise<void> {
		while (this.pending.length || this.waiting.length || this.inFlight || this.scheduled) await new Promise(r => setTimeout(r, 5));
	}
}
