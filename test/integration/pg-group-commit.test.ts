/**
 * PostgreSQL group commit on the machine's server: the writes of one event-loop turn go as few
 * statements (each one commit, one WAL flush), and every write still gets its own answer — a row
 * with a value its column refuses fails alone.
 */
import { Pool } from "pg";
import { PgGroupCommit } from "../../src/storage/pg-group-commit";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { describeWith, POSTGRES } from "../support/services";

describeWith(POSTGRES)("PostgreSQL group commit", () => {
	let db: TestDatabase;
	let pool: Pool;
	/** Reads the rows back on connections of its own, so `statements` holds the writer's only. */
	let reader: Pool;
	let statements: string[];
	let writes: PgGroupCommit;

	beforeAll(async () => {
		db = await createTestDatabase();
		pool = new Pool({ connectionString: db.url, max: 4 });
		reader = new Pool({ connectionString: db.url, max: 1 });
		await pool.query('CREATE TABLE items ("id" VARCHAR(255) PRIMARY KEY, "doc" JSONB NOT NULL, "status" VARCHAR(255), "rank" DOUBLE PRECISION)');
		// Every statement the writer sends, as PostgreSQL gets it.
		const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
		(pool as unknown as { query: unknown }).query = (config: string | { text: string }, ...rest: unknown[]) => {
			statements.push(typeof config === "string" ? config : config.text);
			return query(config, ...rest);
		};
		writes = new PgGroupCommit(pool, { table: "items", queryable: { status: "string", rank: "number" } });
	});
	beforeEach(() => (statements = []));
	afterAll(async () => {
		await Promise.all([pool.end(), reader.end()]);
		await db.drop();
	});

	const row = async (id: string) => (await reader.query('SELECT "doc", "status", "rank" FROM items WHERE "id" = $1', [id])).rows[0];

	test("500 inserts made at once are one statement; 500 compare-and-sets of one shape another", async () => {
		const ids = Array.from({ length: 500 }, (_, n) => `i${n}`);
		const inserted = await Promise.all(ids.map((id, n) => writes.insert(id, { id, status: "new", rank: n, note: `it's "${n}"` })));
		expect(inserted.every(Boolean)).toBe(true);
		expect(statements.filter(s => s.startsWith("INSERT"))).toHaveLength(1);
		expect(await row("i7")).toEqual({ doc: { id: "i7", status: "new", rank: 7, note: `it's "7"` }, status: "new", rank: 7 });

		statements = [];
		const claimed = await Promise.all(ids.map((id, n) => writes.update(id, { status: "claimed", owner: "me" }, { rank: n % 2 ? n : -1 }, false)));
		expect(claimed.filter(Boolean)).toHaveLength(250);
		expect(statements).toHaveLength(1);
		expect(await row("i7")).toMatchObject({ status: "claimed", doc: { status: "claimed", owner: "me" } });
		expect(await row("i8")).toMatchObject({ status: "new" });
	});

	test("an id that exists, twice in one batch: the first write decides, the rest are told it existed", async () => {
		const answers = await Promise.all([writes.insert("i1", { id: "i1" }), writes.insert("d1", { id: "d1", rank: 1 }), writes.insert("d1", { id: "d1", rank: 2 })]);
		expect(answers).toEqual([false, true, false]);
		expect((await row("d1")).rank).toBe(1);
	});

	test("a value its column refuses fails that write alone; the others in its batch are committed", async () => {
		const long = "x".repeat(256);
		const answers = await Promise.allSettled([writes.insert("ok1", { status: "fine" }), writes.insert("bad", { status: long }), writes.insert("ok2", { status: "fine" })]);
		expect(answers.map(a => a.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
		expect(String((answers[1] as PromiseRejectedResult).reason)).toMatch(/too long/);
		expect(await row("ok1")).toBeDefined();
		expect(await row("ok2")).toBeDefined();
		expect(await row("bad")).toBeUndefined();
	});

	test("changes to one row made at once keep their order, each after the one before committed", async () => {
		await writes.insert("seq", { rank: 0 });
		const answers = await Promise.all([1, 2, 3].map(n => writes.update("seq", { rank: n, [`step${n}`]: true }, { rank: n - 1 }, false)));
		expect(answers).toEqual([true, true, true]);
		expect(await row("seq")).toEqual({ doc: { rank: 3, step1: true, step2: true, step3: true }, status: null, rank: 3 });
		expect(await writes.update("seq", { status: "read" }, {}, true)).toEqual({ rank: 3, step1: true, step2: true, step3: true, status: "read" });
		expect(await writes.update("missing", { status: "x" }, {}, true)).toBeNull();
	});
});
