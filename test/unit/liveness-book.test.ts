/** The liveness book: the later beat wins, batches carry what was heard since the last, malformed batches are dropped. */
import { LivenessBook } from "../../src/runtime/liveness";

test("a beat is kept with its load; a later beat without a load keeps the load reported before", () => {
	const book = new LivenessBook();
	book.record("a", 1000, 0.5);
	book.record("a", 2000);
	expect(book.get("a")).toEqual({ at: 2000, load: 0.5 });
});

test("an older beat (from a slow batch) never moves the clock back", () => {
	const book = new LivenessBook();
	book.record("a", 5000, 0.2);
	book.mergeBatch({ beats: [["a", 4000, 0.9]] }, 10_000);
	expect(book.get("a")).toEqual({ at: 5000, load: 0.2 });
});

test("a batch holds each agent once, with its latest beat, and only what was heard since the last batch", () => {
	const book = new LivenessBook();
	book.record("a", 1000);
	book.record("b", 1100, 0.3);
	book.record("a", 1200);
	expect(book.takeBatch()).toEqual({ beats: [["a", 1200], ["b", 1100, 0.3]] });
	expect(book.takeBatch()).toBeNull();
	book.record("b", 1300, 0.3);
	expect(book.takeBatch()).toEqual({ beats: [["b", 1300, 0.3]] });
});

test("another node's batch: merged, beats from the future count from now", () => {
	const book = new LivenessBook();
	book.record("a", 1000, 0.1);
	book.mergeBatch({ beats: [["a", 2000, 0.7], ["b", 99_999_999]] }, 5000);
	expect(book.get("a")).toEqual({ at: 2000, load: 0.7 });
	expect(book.get("b")).toEqual({ at: 5000 });
	// Merged beats are another node's to share: this node's next batch does not echo them.
	expect(book.takeBatch()).toEqual({ beats: [["a", 1000, 0.1]] });
});

test.each<[string, unknown]>([
	["no beats", {}],
	["not a list", { beats: "a" }],
	["a beat that is no tuple", { beats: [["ok", 1], { id: "x" }] }],
	["a time that is no number", { beats: [["ok", 1], ["x", "soon"]] }],
	["a load above 1", { beats: [["ok", 1], ["x", 1, 7]] }],
	["an id too long", { beats: [["ok", 1], ["x".repeat(500), 1]] }]
])("a malformed batch (%s) is dropped whole", (_what, batch) => {
	const book = new LivenessBook();
	book.mergeBatch(batch, 10);
	expect(book.get("ok")).toBeUndefined();
});

test("a removed agent is forgotten, and not shared", () => {
	const book = new LivenessBook();
	book.record("a", 1000);
	book.forget("a");
	expect(book.get("a")).toBeUndefined();
	expect(book.takeBatch()).toBeNull();
});
