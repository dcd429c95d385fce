/** The quota rules (src/domain/quotas.ts) and how the gateway shows them (src/gateway/error-response.ts). */
import { hourlyView, OPEN_TASKS_RETRY_AFTER_S, openTasksVerdict, quotaSubject, refusalMessage, tightest } from "../../src/domain/quotas";
import { quotaHeaders, toErrorResponse } from "../../src/gateway/error-response";
import { ApiError } from "../../src/platform/errors";

test("whose budget: a token's subject; the engine (a trusted node's system principal) and anonymous calls spend none", () => {
	expect(quotaSubject({ sub: "ann", roles: ["operator"] })).toBe("ann");
	expect(quotaSubject({ sub: "root", roles: ["admin"] })).toBe("root");
	expect(quotaSubject({ sub: "system:core-1", roles: ["system"] })).toBeNull();
	expect(quotaSubject(null)).toBeNull();
});

test("open tasks: admitted below the limit with what is left after it; refused at it, asked to come back soon", () => {
	expect(openTasksVerdict(0, 3)).toEqual({ allowed: true, view: { quota: "open_tasks", limit: 3, remaining: 2 } });
	expect(openTasksVerdict(2, 3)).toEqual({ allowed: true, view: { quota: "open_tasks", limit: 3, remaining: 0 } });
	expect(openTasksVerdict(3, 3)).toEqual({ allowed: false, view: { quota: "open_tasks", limit: 3, remaining: 0, retry_after_s: OPEN_TASKS_RETRY_AFTER_S } });
	// Over the limit (a run's stage tasks are never refused): refused too.
	expect(openTasksVerdict(7, 3).allowed).toBe(false);
});

test("the hour: remaining after the hit; a refusal waits until the subject's hour ends, at least a second", () => {
	const now = 1_000_000;
	expect(hourlyView({ allowed: true, limit: 10, remaining: 4, resetAt: now + 5000 }, now)).toEqual({ quota: "tasks_per_hour", limit: 10, remaining: 4 });
	expect(hourlyView({ allowed: false, limit: 10, remaining: 0, resetAt: now + 1_800_400 }, now)).toEqual({ quota: "tasks_per_hour", limit: 10, remaining: 0, retry_after_s: 1801 });
	expect(hourlyView({ allowed: false, limit: 10, remaining: 0, resetAt: now }, now).retry_after_s).toBe(1);
});

test("an admitted submission shows the quota nearest to refusing", () => {
	const hour = { quota: "tasks_per_hour" as const, limit: 100, remaining: 40 };
	const open = { quota: "open_tasks" as const, limit: 5, remaining: 2 };
	expect(tightest([open, hour])).toBe(open);
	expect(tightest([{ ...hour, remaining: 1 }, open])).toEqual({ ...hour, remaining: 1 });
	expect(tightest([])).toBeUndefined();
});

test("QUOTA_EXCEEDED keeps its code (429 is not only RATE_LIMITED) and its figures become headers", () => {
	const view = { quota: "open_tasks" as const, limit: 3, remaining: 0, retry_after_s: 5 };
	const { status, body } = toErrorResponse(new ApiError("QUOTA_EXCEEDED", refusalMessage(view), view) as never);
	expect(status).toBe(429);
	expect(body).toEqual({ error: { code: "QUOTA_EXCEEDED", message: expect.stringMatching(/3 pending, retrying or running/), details: view } });
	expect(quotaHeaders(body.error.details)).toEqual({ "X-Quota-Limit": "3", "X-Quota-Remaining": "0", "Retry-After": "5" });
	expect(quotaHeaders({ quota: "tasks_per_hour", limit: 10, remaining: 7 })).toEqual({ "X-Quota-Limit": "10", "X-Quota-Remaining": "7" });
	expect(quotaHeaders(undefined)).toEqual({});
	expect(toErrorResponse(new ApiError("RATE_LIMITED", "Too many requests") as never).body.error.code).toBe("RATE_LIMITED");
});
