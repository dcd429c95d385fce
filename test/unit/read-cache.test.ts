/** The read cache: answers until the next write, shared by concurrent reads, never kept past a write that completes while they are in flight, off while another node holds stores. */
import { ReadCache } from "../../src/runtime/read-cache";
import type { EntityStore } from "../../src/storage/entity-store";

function fakeStore() {
	const rows = new Map<string, { id: string }>();
	let finds = 0;
	const store = {
		spec: { name: "t", idField: "id", queryable: {}, indexes: [] },
		async insert(e: { id: string }) {
			await new Promise(r => setTimeout(r, 5));
			rows.set(e.id, e);
			return e;
		},
		async get(id: string) {
			return rows.get(id) ?? null;
		},
		async find() {
			finds++;
			await new Promise(r => setTimeout(r, 5));
			return [...rows.values()];
		},
		async count() {
			return rows.size;
		},
		async update() {
			return null;
		},
		async updateIf() {
			return false;
		},
		async remove(id: string) {
			return rows.delete(id);
		},
		async removeMany() {
			return 0;
		},
		async ping() {}
	} satisfies EntityStore<{ id: string }>;
	return { store, finds: () => finds };
}

test("a read is answered from memory until a write completes; then afresh", async () => {
	const cache = new ReadCache();
	const { store: raw, finds } = fakeStore();
	const store = cache.watching(raw);
	const list = () => cache.read("list", () => store.find());
	expect(await list()).toEqual([]);
	expect(await list()).toEqual([]);
	expect(finds()).toBe(1);
	await store.insert({ id: "a" });
	expect(await list()).toEqual([{ id: "a" }]);
	expect(finds()).toBe(2);
	await store.remove("a");
	expect(await list()).toEqual([]);
});

test("concurrent reads share one computation; a read in flight when a write completes is not kept", async () => {
	const cache = new ReadCache();
	const { store: raw, finds } = fakeStore();
	const store = cache.watching(raw);
	const [x, y] = await Promise.all([cache.read("k", () => store.find()), cache.read("k", () => store.find())]);
	expect(x).toBe(y);
	expect(finds()).toBe(1);
	cache.changed();
	const inFlight = cache.read("k", () => store.find());
	await store.insert({ id: "late" });
	expect(await inFlight).toEqual([]);
	expect(await cache.read("k", () => store.find())).toEqual([{ id: "late" }]);
});

test("a failed read is not kept", async () => {
	const cache = new ReadCache();
	await expect(cache.read("k", () => Promise.reject(new Error("down")))).rejects.toThrow("down");
	expect(await cache.read("k", async () => "up")).toBe("up");
});

test("off while another node runs one of our storage services; on again once it is gone", async () => {
	const cache = new ReadCache();
	cache.storageServices.add("tasks");
	let computed = 0;
	const read = () => cache.read("k", async () => ++computed);
	await read();
	cache.placeServices([{ name: "tasks", nodeID: "me" }, { name: "api", nodeID: "other" }], "me");
	expect(await read()).toBe(1);
	cache.placeServices([{ name: "tasks", nodeID: "me" }, { name: "tasks", nodeID: "other" }], "me");
	expect(await read()).toBe(2);
	expect(await read()).toBe(3);
	cache.placeServices([{ name: "tasks", nodeID: "me" }], "me");
	expect(await read()).toBe(4);
	expect(await read()).toBe(4);
});

test("a read whose store calls helpers of its own is still a read", async () => {
	const cache = new ReadCache();
	class Store {
		readonly spec = { name: "t", idField: "id", queryable: {}, indexes: [] };
		rows = [{ id: "a" }];
		decode(row: { id: string }) {
			return { ...row };
		}
		async find() {
			return this.rows.map(row => this.decode(row));
		}
	}
	const store = cache.watching(new Store() as unknown as EntityStore<{ id: string }>);
	let computed = 0;
	const read = () => cache.read("k", async () => (computed++, store.find()));
	await read();
	await read();
	expect(computed).toBe(1);
});

test("a node's cache goes off when another node starts one of its storage services, and on when that node leaves", async () => {
	const { ServiceBroker } = await import("moleculer");
	const { readCacheOf } = await import("../../src/runtime/read-cache");
	const namespace = `read-cache-${process.pid}-${Date.now()}`;
	const a = new ServiceBroker({ nodeID: "a", namespace, transporter: "Fake", logger: false });
	const b = new ServiceBroker({ nodeID: "b", namespace, transporter: "Fake", logger: false });
	const cache = readCacheOf(a);
	cache.storageServices.add("tasks");
	a.createService({ name: "tasks" });
	b.createService({ name: "tasks" });
	let computed = 0;
	const read = () => cache.read("k", async () => ++computed);
	const seesB = () => a.registry.getServiceList({ skipInternal: true }).some(s => s.nodeID === "b");
	try {
		await a.start();
		await read();
		expect(await read()).toBe(1);
		await b.start();
		for (let i = 0; i < 50 && !seesB(); i++) await new Promise(r => setTimeout(r, 20));
		expect(await read()).toBe(2);
		expect(await read()).toBe(3);
		await b.stop();
		for (let i = 0; i < 50 && seesB(); i++) await new Promise(r => setTimeout(r, 20));
		expect(await read()).toBe(4);
		expect(await read()).toBe(4);
	} finally {
		await b.stop().catch(() => undefined);
		await a.stop();
	}
});
