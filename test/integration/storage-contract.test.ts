/**
 * One contract, every adapter: NeDB files always, PostgreSQL (required in CI), MongoDB when MONGODB_URI is set.
 */
import fs from "node:fs";
import type { Service, ServiceBroker } from "moleculer";
import { storageMixin } from "../../mixins/db.mixin";
import { DuplicateKeyError, type CollectionSpec, type EntityStore } from "../../src/storage/entity-store";
import { createTestBroker, testConfig } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { MAX_SUBJECT_LENGTH } from "../../src/platform/tokens";
import { describeWith, MONGODB, POSTGRES, type Requirement } from "../support/services";
import { MongoDbAdapter } from "../../src/storage/mongo";
import net from "node:net";

interface Item {
	item_id: string;
	status: string;
	rank: number;
	owner: string | null;
	tags: string[];
	nested: { a: number; note?: string };
	counter?: number;
}

const SPEC: CollectionSpec = {
	name: "contract_items",
	idField: "item_id",
	queryable: { status: "string", rank: "number", owner: "string" },
	indexes: [["status", "rank"], ["owner"]]
};

type Backend = { name: string; needs: Requirement[]; env: () => Promise<Record<string, string>>; cleanup?: () => Promise<void> };

let pg: TestDatabase | undefined;
const backends: Backend[] = [
	{ name: "nedb", needs: [], env: async () => ({}) },
	{
		name: "postgres",
		needs: [POSTGRES],
		env: async () => {
			pg = await createTestDatabase();
			return { DATABASE_URL: pg.url };
		},
		cleanup: async () => pg?.drop()
	},
	{ name: "mongo", needs: [MONGODB], env: async () => ({ MONGODB_URI: process.env.MONGODB_URI! }) }
];

async function startStore(env: Record<string, string>, spec = SPEC): Promise<{ broker: ServiceBroker; store: EntityStore<Item> }> {
	const broker = createTestBroker(testConfig(env));
	const service = broker.createService({ name: "items", mixins: [storageMixin(spec)] }) as Service & { store: EntityStore<Item> };
	await broker.start();
	return { broker, store: service.store };
}

const item = (n: number, over: Partial<Item> = {}): Item => ({
	item_id: `item-${n}`,
	status: n % 2 ? "odd" : "even",
	rank: n,
	owner: null,
	tags: [`t${n}`],
	nested: { a: n, note: "cost $5 and $$ and 'quotes'" },
	...over
});

for (const backend of backends) describeWith(...backend.needs)(`storage contract on ${backend.name}`, () => {
	let env: Record<string, string>;
	let broker: ServiceBroker;
	let store: EntityStore<Item>;

	beforeAll(async () => {
		env = { ...(await backend.env()), DATA_DIR: testConfig().dataDir };
		({ broker, store } = await startStore(env));
		if (backend.name === "mongo") await store.removeMany({});
	});
	afterAll(async () => {
		await broker?.stop();
		await backend.cleanup?.();
	});
	test("insert and get keep the entity's exact shape, string id included", async () => {
		await store.insert(item(1));
		expect(await store.get("item-1")).toEqual(item(1));
		expect(await store.get("missing")).toBeNull();
	});

	test("insert of an existing id fails with DuplicateKeyError", async () => {
		await expect(store.insert(item(1))).rejects.toBeInstanceOf(DuplicateKeyError);
	});

	test("find filters, sorts and pages; count agrees", async () => {
		for (let n = 2; n <= 10; n++) await store.insert(item(n, { owner: n > 6 ? "ann" : null }));
		const odd = await store.find({ filter: { status: "odd" }, sort: [["rank", -1]] });
		expect(odd.map(i => i.rank)).toEqual([9, 7, 5, 3, 1]);
		const page = await store.find({ sort: [["rank", 1]], offset: 2, limit: 3 });
		expect(page.map(i => i.rank)).toEqual([3, 4, 5]);
		expect(await store.count({ status: "even" })).toBe(5);
		expect(await store.count()).toBe(10);
		expect((await store.find({ filter: { rank: { $gte: 8 } } })).length).toBe(3);
		expect((await store.find({ filter: { rank: { $in: [1, 2, 99] } } })).length).toBe(2);
		expect((await store.find({ filter: { owner: null } })).length).toBe(6);
		expect((await store.find({ filter: { owner: "ann", rank: { $lt: 9 } } })).map(i => i.rank).sort()).toEqual([7, 8]);
		expect((await store.find({ filter: { owner: { $ne: null } } })).length).toBe(4);
	});

	test("a queryable string as long as a token subject may be (created_by) is stored and found", async () => {
		const owner = "s".repeat(MAX_SUBJECT_LENGTH);
		await store.insert(item(90, { owner }));
		expect((await store.find({ filter: { owner } })).map(i => i.item_id)).toEqual(["item-90"]);
		await store.remove("item-90");
	});

	test("any JSON keys round-trip: dots, leading $, percent signs, at any depth", async () => {
		const odd = { "a.b": 1, $set: { "x.y": [{ $in: "%2E", "100%": true }] }, plain: "v" };
		await store.insert(item(50, { nested: odd as never }));
		expect((await store.get("item-50"))!.nested).toEqual(odd);
		await store.update("item-50", { nested: { ...odd, "c.d": 2 } as never });
		expect((await store.get("item-50"))!.nested).toEqual({ ...odd, "c.d": 2 });
		expect((await store.find({ filter: { rank: 50 } }))[0].nested).toEqual({ ...odd, "c.d": 2 });
		await store.remove("item-50");
	});

	test("keys that escape to one another's stored form keep their own values, in either order", async () => {
		const clash = { "a.b": 1, "a%2Eb": 2, "$x": 3, "%24x": 4, "%": 5, "%25": 6, deep: [{ "%2Eb": 7, ".b": 8 }] };
		const reversed = Object.fromEntries(Object.entries(clash).reverse());
		await store.insert(item(51, { nested: clash as never }));
		await store.insert(item(52, { nested: reversed as never }));
		expect((await store.get("item-51"))!.nested).toEqual(clash);
		expect((await store.get("item-52"))!.nested).toEqual(reversed);
		await store.update("item-51", { nested: reversed as never });
		expect((await store.get("item-51"))!.nested).toEqual(clash);
		await store.removeMany({ rank: { $in: [51, 52] } });
	});

	test("arrays nested 30 deep (within what the API takes) are stored, updated and read back at once, shape intact", async () => {
		let deep: unknown = [1, { "a.b": [[]] }];
		for (let i = 0; i < 30; i++) deep = i % 3 ? [deep] : [{ x: deep }, []];
		const started = Date.now();
		await store.insert(item(53, { nested: { a: 1, list: deep } as never, tags: ["top", "level"] }));
		await store.update("item-53", { status: "moved", nested: { a: 2, list: deep } as never });
		const got = (await store.get("item-53"))!;
		expect(Date.now() - started).toBeLessThan(2000);
		expect(got).toEqual({ ...item(53), status: "moved", nested: { a: 2, list: deep }, tags: ["top", "level"] });
		expect((await store.find({ filter: { rank: 53 } }))[0]).toEqual(got);
		await store.remove("item-53");
	});

	test("filters on undeclared fields are refused", async () => {
		await expect(store.find({ filter: { tags: "x" } })).rejects.toThrow(/not queryable/);
	});

	test("update sets fields and returns the entity; unknown id gives null", async () => {
		const updated = await store.update("item-2", { status: "done", nested: { a: 42 } });
		expect(updated).toEqual({ ...item(2), status: "done", nested: { a: 42 } });
		expect(await store.count({ status: "done" })).toBe(1);
		expect(await store.update("missing", { status: "x" })).toBeNull();
	});

	test("conditional update changes only when the expectation holds", async () => {
		expect(await store.updateIf("item-3", { status: "even" }, { status: "claimed" })).toBe(false);
		expect(await store.updateIf("item-3", { status: "odd" }, { status: "claimed", owner: "bob" })).toBe(true);
		expect(await store.get("item-3")).toMatchObject({ status: "claimed", owner: "bob" });
		expect(await store.updateIf("missing", { status: "odd" }, { status: "x" })).toBe(false);
	});

	test("50 concurrent compare-and-set writers: exactly one wins each round, no lost update", async () => {
		await store.insert({ ...item(100), counter: 0 });
		for (let round = 0; round < 3; round++) {
			const current = (await store.get("item-100"))!;
			const results = await Promise.all(
				Array.from({ length: 50 }, (_, w) =>
					store.updateIf("item-100", { rank: current.rank }, { rank: current.rank + 1, owner: `w${w}`, counter: round + 1 })
				)
			);
			expect(results.filter(Boolean)).toHaveLength(1);
		}
		expect(await store.get("item-100")).toMatchObject({ rank: 103, counter: 3 });
	});

	test("writes made at once each get their own answer: many inserts, a duplicate id among them, changes to one row in order", async () => {
		const ids = Array.from({ length: 120 }, (_, n) => 300 + n);
		const inserted = await Promise.allSettled([...ids, 300, 301].map(n => store.insert(item(n, { status: "batch" }))));
		expect(inserted.filter(r => r.status === "fulfilled")).toHaveLength(120);
		const refused = inserted.filter((r): r is PromiseRejectedResult => r.status === "rejected");
		expect(refused.map(r => r.reason)).toEqual([expect.any(DuplicateKeyError), expect.any(DuplicateKeyError)]);
		expect(await store.count({ status: "batch" })).toBe(120);
		// Three changes to one row, and compare-and-sets that each expect the one before: applied in the order made.
		const [a, b, c] = await Promise.all([
			store.update("item-300", { rank: 1 }),
			store.updateIf("item-300", { rank: 1 }, { rank: 2 }),
			store.updateIf("item-300", { rank: 2 }, { rank: 3, owner: "last" })
		]);
		expect([a === null, b, c]).toEqual([false, true, true]);
		expect(await store.get("item-300")).toMatchObject({ rank: 3, owner: "last" });
		// Compare-and-sets on many rows at once: the ones whose expectation holds apply, the others do not.
		const flips = await Promise.all(ids.map(n => store.updateIf(`item-${n}`, { rank: n % 2 ? n : -1 }, { status: "flipped" })));
		expect(flips.filter(Boolean)).toHaveLength(ids.filter(n => n % 2).length);
		expect(await store.count({ status: "flipped" })).toBe(flips.filter(Boolean).length);
		expect(await store.removeMany({ status: { $in: ["batch", "flipped"] } })).toBe(120);
	});

	test("remove and removeMany", async () => {
		expect(await store.remove("item-10")).toBe(true);
		expect(await store.remove("item-10")).toBe(false);
		expect(await store.removeMany({ owner: "ann" })).toBe(3);
		expect(await store.get("item-10")).toBeNull();
	});

	test("removeMany by a list of ids with conditions (the retention's batch) removes only the listed rows that still match", async () => {
		for (let n = 300; n < 310; n++) await store.insert(item(n, { owner: n < 305 ? "gone" : "kept" }));
		// One of the listed rows changed since it was listed: the condition keeps it.
		await store.update("item-301", { owner: "changed" });
		const listed = ["item-300", "item-301", "item-302", "item-305", "item-missing"];
		expect(await store.removeMany({ item_id: { $in: listed }, owner: "gone", rank: { $lt: 309 } })).toBe(2);
		const left = (await store.find({ filter: { rank: { $gte: 300, $lt: 310 } }, sort: [["rank", 1]] })).map(i => i.item_id);
		expect(left).toEqual(["item-301", "item-303", "item-304", "item-305", "item-306", "item-307", "item-308", "item-309"]);
		expect(await store.removeMany({ item_id: { $in: [] }, owner: "gone" })).toBe(0);
		await store.removeMany({ rank: { $gte: 300, $lt: 310 } });
	});

	test("compact keeps every record; on NeDB the file then holds one line per record", async () => {
		const before = await store.find({ sort: [["item_id", 1]] });
		for (let n = 400; n < 420; n++) await store.insert(item(n));
		await store.update("item-401", { status: "changed" });
		expect(await store.removeMany({ rank: { $gte: 400, $lt: 420 } })).toBe(20);
		const file = `${env.DATA_DIR}/${SPEC.name}.db`;
		const sizeBefore = backend.name === "nedb" ? fs.statSync(file).size : 0;
		await store.compact?.();
		expect(await store.find({ sort: [["item_id", 1]] })).toEqual(before);
		if (backend.name !== "nedb") return;
		expect(fs.statSync(file).size).toBeLessThan(sizeBefore);
		const ids = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(line => JSON.parse(line)._id);
		expect(ids.sort()).toEqual(before.map(i => i.item_id).sort());
	});

	test("a restart keeps every record", async () => {
		const before = await store.find({ sort: [["item_id", 1]] });
		await broker.stop();
		({ broker, store } = await startStore(env));
		expect(await store.find({ sort: [["item_id", 1]] })).toEqual(before);
		await store.ping();
	});

	test("a field made queryable (and indexed) after records were stored finds those records", async () => {
		await broker.stop();
		const later: CollectionSpec = { ...SPEC, queryable: { ...SPEC.queryable, counter: "number" }, indexes: [...SPEC.indexes, ["counter", "status"]] };
		({ broker, store } = await startStore(env, later));
		expect((await store.find({ filter: { counter: 3 } })).map(i => i.item_id)).toEqual(["item-100"]);
		await store.insert(item(200, { counter: 3 }));
		expect(await store.count({ counter: 3 })).toBe(2);
	});
});

// Runs everywhere: the driver is real, only the server is missing (moleculer-db retries a failed connect every second).
describe("MongoDB adapter without a server", () => {
	test("connect fails within the URI's serverSelectionTimeoutMS, and leaves nothing open to retry over", async () => {
		const port = await new Promise<number>(resolve => {
			const server = net.createServer().listen(0, "127.0.0.1", () => {
				const { port } = server.address() as net.AddressInfo;
				server.close(() => resolve(port));
			});
		});
		const adapter = new MongoDbAdapter(`mongodb://127.0.0.1:${port}/mcp_none?serverSelectionTimeoutMS=300`, "contract_items");
		const logged: unknown[] = [];
		adapter.init({} as never, { logger: { info: (...args: unknown[]) => logged.push(args) } } as never);
		const started = Date.now();
		await expect(adapter.connect()).rejects.toMatchObject({ name: "MongoServerSelectionError" });
		expect(Date.now() - started).toBeLessThan(5000);
		expect([adapter.client, adapter.collection, logged]).toEqual([undefined, undefined, []]);
		await adapter.disconnect();
	});
});
