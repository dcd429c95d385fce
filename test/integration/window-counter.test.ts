/**
 * The fixed-window counter behind the gateway's rate limit and the hourly task quota, on
 * rate-limiter-flexible: in memory, shared through the machine's Redis, and its per-node fallback
 * while Redis is unreachable.
 */
import { randomBytes } from "node:crypto";
import { failFastRedis } from "../../src/platform/redis-client";
import { WindowCounter } from "../../src/platform/window-counter";
import { freePort } from "../support/cluster";
import { describeWith, REDIS } from "../support/services";

async function hits(counter: WindowCounter, key: string, n: number) {
	const out = [];
	for (let i = 0; i < n; i++) out.push(await counter.hit(key));
	return out;
}

test("in memory: the limit per key and window, remaining and reset; a refund gives a hit back", async () => {
	const counter = new WindowCounter(3, 60);
	const before = Date.now();
	const decisions = await hits(counter, "a", 4);
	expect(decisions.map(d => d.allowed)).toEqual([true, true, true, false]);
	expect(decisions.map(d => d.remaining)).toEqual([2, 1, 0, 0]);
	expect(decisions[0].limit).toBe(3);
	expect(decisions[3].resetAt).toBeGreaterThan(before + 59_000);
	expect(decisions[3].resetAt).toBeLessThanOrEqual(Date.now() + 60_000);
	expect((await counter.hit("b")).allowed).toBe(true);
	await counter.refund("a");
	await counter.refund("a");
	expect((await counter.hit("a")).allowed).toBe(true);
});

test("aligned windows end on the clock's boundary", async () => {
	const decision = await new WindowCounter(1, 60, { aligned: true }).hit("a");
	expect(decision.resetAt % 60_000).toBe(0);
	expect(decision.resetAt - Date.now()).toBeLessThanOrEqual(60_000);
});

describeWith(REDIS)("shared through Redis", () => {
	const url = `redis://${REDIS.host}:${REDIS.port}`;
	const prefix = `window-test-${randomBytes(4).toString("hex")}`;
	const clients = [failFastRedis(url), failFastRedis(url)];
	afterAll(async () => {
		const keys = await clients[0].keys(`${prefix}*`);
		if (keys.length) await clients[0].del(...keys);
		for (const c of clients) c.disconnect();
	});

	test("two counters on one Redis share one budget per key", async () => {
		await Promise.all(clients.map(c => new Promise(resolve => (c.status === "ready" ? resolve(null) : c.once("ready", resolve)))));
		const [a, b] = clients.map(redis => new WindowCounter(4, 60, { shared: { redis, prefix } }));
		const allowed = [];
		for (let i = 0; i < 6; i++) allowed.push((await (i % 2 ? a : b).hit("k")).allowed);
		expect(allowed).toEqual([true, true, true, true, false, false]);
		const concurrent = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).hit("c")));
		expect(concurrent.filter(d => d.allowed)).toHaveLength(4);
	});

	test("Redis unreachable: each counter counts on its own, at once", async () => {
		const port = await freePort();
		const reports: boolean[] = [];
		const down = failFastRedis(`redis://127.0.0.1:${port}`, reachable => reports.push(reachable));
		try {
			const counter = new WindowCounter(2, 60, { shared: { redis: down, prefix }, aligned: true });
			const started = Date.now();
			expect((await hits(counter, "k", 3)).map(d => d.allowed)).toEqual([true, true, false]);
			expect(Date.now() - started).toBeLessThan(1000);
			await new Promise(r => setTimeout(r, 200));
			expect(reports).toEqual([false]);
		} finally {
			down.disconnect();
		}
	});
});
