/** The panel's routes, task filters and token reading, without a browser. */
import jwt from "jsonwebtoken";
import { describeFilter, matchesTask, narrows, parseTaskFilter, serverFilter } from "../../web/src/lib/filters";
import { can, decodeToken, isExpired } from "../../web/src/lib/jwt";
import { href, parseRoute } from "../../web/src/lib/route";

describe("routes", () => {
	test("views, their parts and the query come from the hash", () => {
		expect(parseRoute("#/tasks?status=failed&type=analysis")).toMatchObject({ view: "tasks", parts: [] });
		expect(parseRoute("#/tasks?status=failed").query.get("status")).toBe("failed");
		expect(parseRoute("#/pipelines/p%2F1/runs/r1")).toMatchObject({ view: "pipelines", parts: ["p/1", "runs", "r1"] });
		expect(parseRoute("")).toMatchObject({ view: "overview", parts: [] });
		expect(parseRoute("#/nowhere/x")).toMatchObject({ view: "overview", parts: [] });
	});

	test("href encodes segments and leaves empty query values out; parseRoute reads it back", () => {
		const link = href("pipelines", ["p/1", "runs", "r 1"], { status: "failed", type: undefined, agent_id: "" });
		expect(link).toBe("#/pipelines/p%2F1/runs/r%201?status=failed");
		expect(parseRoute(link).parts).toEqual(["p/1", "runs", "r 1"]);
	});
});

describe("task filters", () => {
	test("known statuses and trimmed fields are kept; an unknown status is dropped", () => {
		expect(parseTaskFilter(new URLSearchParams("status=failed&type=%20analysis%20&search=abc&agent_id="))).toEqual({ status: "failed", type: "analysis", search: "abc" });
		expect(parseTaskFilter(new URLSearchParams("status=exploded"))).toEqual({});
		expect(parseTaskFilter(new URLSearchParams(`type=${"x".repeat(500)}`)).type).toHaveLength(200);
	});

	test("the server gets status, type, agent and pipeline, never the id search", () => {
		const filter = { status: "pending" as const, search: "abc", pipeline_id: "p1" };
		expect(serverFilter(filter)).toEqual({ status: "pending", pipeline_id: "p1" });
	});

	test("a filter narrows another when it keeps every server-side field the other sets (the search does not count)", () => {
		const filter = { status: "pending" as const, search: "abc", pipeline_id: "p1" };
		expect(narrows(filter, { status: "pending", pipeline_id: "p1", search: "zzz" })).toBe(true);
		expect(narrows(filter, { status: "pending", pipeline_id: "p1", type: "analysis" })).toBe(true);
		expect(narrows({}, filter)).toBe(true);
		expect(narrows(filter, { status: "failed", pipeline_id: "p1" })).toBe(false);
		expect(narrows(filter, { status: "pending" })).toBe(false);
	});

	test("matching: every field set must hold, the id search is a case-insensitive substring", () => {
		const t = { task_id: "task-ABC123", status: "failed" as const, type: "analysis", assigned_agent: "a1", pipeline_id: null };
		expect(matchesTask(t, {})).toBe(true);
		expect(matchesTask(t, { search: "abc1", status: "failed", agent_id: "a1" })).toBe(true);
		expect(matchesTask(t, { type: "output" })).toBe(false);
		expect(matchesTask(t, { pipeline_id: "p1" })).toBe(false);
		// An event has no type: it is not refused for it.
		const { type: _type, ...event } = t;
		expect(matchesTask(event, { status: "failed" })).toBe(true);
	});

	test("a filter in words, for the bulk confirmation", () => {
		expect(describeFilter({ status: "failed", agent_id: "a1" })).toBe("status failed, agent a1");
		expect(describeFilter({})).toBe("all tasks");
	});
});

describe("tokens", () => {
	test("roles, subject and expiry are read without verifying; non-JWTs are refused", () => {
		const token = jwt.sign({ sub: "ops-ünï", roles: ["operator"] }, "any-secret", { expiresIn: 60 });
		const claims = decodeToken(token)!;
		expect(claims).toMatchObject({ sub: "ops-ünï", roles: ["operator"] });
		expect(isExpired(claims, Date.now())).toBe(false);
		expect(isExpired(claims, (claims.exp! + 1) * 1000)).toBe(true);
		expect(decodeToken("not-a-token")).toBeNull();
		expect(decodeToken("a.%%%.c")).toBeNull();
	});

	test("what each role may do in the panel", () => {
		expect(can(["viewer"], "read")).toBe(true);
		expect(can(["viewer"], "operate")).toBe(false);
		expect(can(["operator"], "operate")).toBe(true);
		expect(can(["operator"], "admin")).toBe(false);
		expect(can(["admin"], "operate")).toBe(true);
		expect(can(["agent"], "read")).toBe(false);
	});
});
