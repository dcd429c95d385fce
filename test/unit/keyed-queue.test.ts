import { KeyedQueue } from "../../src/runtime/keyed-queue";

const tick = (ms: number) => new Promise(r => setTimeout(r, ms));

test("work for one key runs one at a time, in order; a failure does not block the next", async () => {
	const queue = new KeyedQueue();
	const log: string[] = [];
	let inFlight = 0;
	let maxInFlight = 0;
	const job = (name: string, fail = false) => async () => {
		inFlight++;
		maxInFlight = Math.max(maxInFlight, inFlight);
		await tick(5);
		log.push(name);
		inFlight--;
		if (fail) throw new Error(name);
		return name;
	};
	const results = await Promise.allSettled([queue.run("a", job("a1")), queue.run("a", job("a2", true)), queue.run("a", job("a3"))]);
	expect(log).toEqual(["a1", "a2", "a3"]);
	expect(maxInFlight).toBe(1);
	expect(results.map(r => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
	await tick(1);
	expect(queue.size).toBe(0);
});

test("different keys run concurrently", async () => {
	const queue = new KeyedQueue();
	let inFlight = 0;
	let maxInFlight = 0;
	const job = async () => {
		inFlight++;
		maxInFlight = Math.max(maxInFlight, inFlight);
		await tick(10);
		inFlight--;
	};
	await Promise.all(["a", "b", "c"].map(k => queue.run(k, job)));
	expect(maxInFlight).toBe(3);
});

test("read-modify-write under 200 concurrent callers loses nothing", async () => {
	const queue = new KeyedQueue();
	let value = 0;
	await Promise.all(
		Array.from({ length: 200 }, () =>
			queue.run("counter", async () => {
				const seen = value;
				await tick(0);
				value = seen + 1;
			})
		)
	);
	expect(value).toBe(200);
});
