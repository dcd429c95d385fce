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

test("a read that began before a patch is not installed over it", async () => {
	const slow = deferred<Item[]>();
	let call = 0;
	const snapshot = new Snapshot<Item>(() => (call++ === 0 ? Promise.resolve([{ id: "1", name: "a", v: 1 }]) : slow.promise), 0);
	await snapshot.get();
	await new Promise(r => setTimeout(r, 2));
	void snapshot.get(); // older than maxAge: a background read starts
	snapshot.patch(i => i.id === "1", { id: "1", name: "a", v: 2 }, byName);
	slow.resolve([{ id: "1", name: "a", v: 1 }]);
	await slow.promise;
	await new Promise(r => setImmediate(r));
	expect((await snapshot.get())[0].v).toBe(2);
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
