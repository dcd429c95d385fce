import { backoffCeilingMs, retryDelayMs } from "../../src/domain/backoff";
import { seeded } from "../support/seeded-random";

const OPTS = { baseMs: 100, maxMs: 1000 };
const never = () => 0;
const always = () => 0.999999999;
const half = () => 0.5;


describe("backoffCeilingMs", () => {
	it("doubles per failed attempt starting from baseMs", () => {
		expect([1, 2, 3, 4].map(attempt => backoffCeilingMs(attempt, OPTS))).toEqual([100, 200, 400, 800]);
	});

	it("is capped at maxMs", () => {
		expect(backoffCeilingMs(5, OPTS)).toBe(1000);
		expect(backoffCeilingMs(50, OPTS)).toBe(1000);
		expect(backoffCeilingMs(10_000, OPTS)).toBe(1000);
		expect(backoffCeilingMs(Number.POSITIVE_INFINITY, OPTS)).toBe(1000);
	});

	it("uses maxMs when it is below baseMs", () => {
		expect(backoffCeilingMs(1, { baseMs: 5000, maxMs: 1000 })).toBe(1000);
	});

	it("treats attempts below 1 or unreadable as the first", () => {
		expect(backoffCeilingMs(0, OPTS)).toBe(100);
		expect(backoffCeilingMs(-3, OPTS)).toBe(100);
		expect(backoffCeilingMs(Number.NaN, OPTS)).toBe(100);
	});

	it("is 0 when the base or the cap is 0 (retry at once), even for huge attempts", () => {
		expect(backoffCeilingMs(1, { baseMs: 0, maxMs: 1000 })).toBe(0);
		expect(backoffCeilingMs(5000, { baseMs: 0, maxMs: 1000 })).toBe(0);
		expect(backoffCeilingMs(3, { baseMs: 100, maxMs: 0 })).toBe(0);
	});
});

describe("retryDelayMs (equal jitter)", () => {
	it("is half the ceiling when the random draw is 0", () => {
		expect([1, 2, 3, 4, 5].map(attempt => retryDelayMs(attempt, OPTS, never))).toEqual([50, 100, 200, 400, 500]);
	});

	it("approaches the full ceiling when the random draw approaches 1", () => {
		expect([1, 2, 3, 4, 5].map(attempt => retryDelayMs(attempt, OPTS, always))).toEqual([100, 200, 400, 800, 1000]);
	});

	it("is three quarters of the ceiling for a draw of 0.5", () => {
		expect(retryDelayMs(3, OPTS, half)).toBe(300);
	});

	it("is deterministic for an injected random", () => {
		expect(retryDelayMs(4, OPTS, seeded(7))).toBe(retryDelayMs(4, OPTS, seeded(7)));
	});

	it("stays within [ceiling/2, ceiling] and is a whole number of ms", () => {
		const random = seeded(42);
		for (let attempt = 1; attempt <= 12; attempt++) {
			const ceiling = backoffCeilingMs(attempt, OPTS);
			for (let i = 0; i < 200; i++) {
				const delay = retryDelayMs(attempt, OPTS, random);
				expect(Number.isInteger(delay)).toBe(true);
				expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
				expect(delay).toBeLessThanOrEqual(ceiling);
			}
		}
	});

	it("actually spreads delays out instead of returning one value", () => {
		const random = seeded(1);
		const delays = new Set(Array.from({ length: 100 }, () => retryDelayMs(5, { baseMs: 1000, maxMs: 60_000 }, random)));
		expect(delays.size).toBeGreaterThan(50);
	});

	it("never collapses to 0 while baseMs is at least 1", () => {
		expect(retryDelayMs(1, { baseMs: 1, maxMs: 1000 }, never)).toBeGreaterThan(0);
		expect(retryDelayMs(1, { baseMs: 2, maxMs: 1000 }, never)).toBe(1);
	});

	it("grows on average with each failed attempt until the cap", () => {
		const opts = { baseMs: 1000, maxMs: 60_000 };
		const random = seeded(3);
		const mean = (attempt: number) =>
			Array.from({ length: 500 }, () => retryDelayMs(attempt, opts, random)).reduce((a, b) => a + b, 0) / 500;
		const means = [1, 2, 3, 4, 5, 6].map(mean);
		for (let i = 1; i < means.length; i++) expect(means[i]).toBeGreaterThan(means[i - 1]);
		expect(mean(20)).toBeLessThanOrEqual(60_000);
		expect(mean(20)).toBeGreaterThanOrEqual(30_000);
	});

	it("keeps to the bounds when an injected random misbehaves", () => {
		expect(retryDelayMs(1, OPTS, () => 1)).toBe(100);
		expect(retryDelayMs(1, OPTS, () => 7)).toBe(100);
		expect(retryDelayMs(1, OPTS, () => -1)).toBe(50);
		expect(retryDelayMs(1, OPTS, () => Number.NaN)).toBe(50);
	});

	it("uses Math.random by default", () => {
		const spy = jest.spyOn(Math, "random").mockReturnValue(0);
		try {
			expect(retryDelayMs(2, OPTS)).toBe(100);
			expect(spy).toHaveBeenCalled();
		} finally {
			spy.mockRestore();
		}
	});
});
