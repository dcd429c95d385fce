/** The in-memory read model: served at once, patched with this node's own changes, never rolled back by a read that began before one. */
import { Snapshot } from "../../src/runtime/snapshot";

type Item = { id: string; name: string; v: number };
const byName = (a: Item, b: Item) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function deferred<T>() {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>(r => (resolve = r));
	return { promise, resolve };
}

test("a patch replaces, inserts in order and removes without a read", async () => {
	let reads = 0;
	const stored: Item[] = [{ id: "1", name: "b", v: 1 }, { id: "2", name: "d", v: 1 }];
	const snapshot = new Snapshot<Item>(async () => (reads++, stored.map(i => ({ ...i }))), 60_000);
	await snapshot.get();
	snapshot.patch(i => i.id === "1", { id: "1", name: "b", v: 2 }, byName);
	snapshot.patch(i => i.id === "3", { id: "3", name: "c", v: 1 }, byName);
	snapshot.patch(i => i.id === "2", null, byName);
	expect(await snapshot.get()).toEqual([{ id: "1", name: "b", v: 2 }, { id: "3", name: "c", v: 1 }]);
	expect(reads).toBe(1);
});

test("a read in flight when this node patches gets the patch; one older than maxAge is read again", async () => {
	const slow = deferred<Item[]>();
	let call = 0;
	const snapshot = new Snapshot<Item>(() => (call++ === 1 ? slow.promise : Promise.resolve([{ id: "1", name: "a", v: call }])), 60_000);
	await snapshot.get();
	snapshot.invalidate();
	const inFlight = snapshot.get(); // read 2, still running
	snapshot.patch(i => i.id === "1", { id: "1", name: "a", v: 9 }, byName);
	slow.resolve([{ id: "1", name: "a", v: 1 }]);
	expect((await inFlight)[0].v).toBe(1);
	expect((await snapshot.get())[0].v).toBe(9);
	expect(call).toBe(2);
	const young = new Snapshot<Item>(async () => [{ id: "1", name: "a", v: ++call }], 20);
	const first = (await young.get())[0].v;
	expect((await young.get())[0].v).toBe(first);
	await new Promise(r => setTimeout(r, 30));
	expect((await young.get())[0].v).toBe(first + 1);
});

test("after invalidate, a patch does nothing and the next caller reads afresh", async () => {
	let v = 1;
	const snapshot = new Snapshot<Item>(async () => [{ id: "1", name: "a", v }], 60_000);
	await snapshot.get();
	snapshot.invalidate();
	v = 3;
	snapshot.patch(i => i.id === "1", { id: "1", name: "a", v: 2 }, byName);
	expect((await snapshot.get())[0].v).toBe(3);
});
