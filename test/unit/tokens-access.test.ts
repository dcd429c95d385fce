import jwt from "jsonwebtoken";
import { actsOnOwnAgent, isAllowed, mayReportOnTask } from "../../src/domain/access";
import { bearerToken, mintToken, sameSecret, TokenError, verifyToken } from "../../src/platform/tokens";
import type { Principal } from "../../src/types";

const SECRET = "unit-secret";

describe("tokens", () => {
	test("mint → verify round trip keeps sub, roles and agent claims", () => {
		const token = mintToken(SECRET, { sub: "agent:1", roles: ["agent"], agent_id: "agent-1", task_id: "task-9", expiresInSec: 60 });
		expect(verifyToken(SECRET, token)).toEqual({ sub: "agent:1", roles: ["agent"], agent_id: "agent-1", task_id: "task-9" });
	});

	test("unknown roles are dropped, not trusted", () => {
		const token = jwt.sign({ sub: "u", roles: ["viewer", "superuser"] }, SECRET, { expiresIn: 60 });
		expect(verifyToken(SECRET, token).roles).toEqual(["viewer"]);
	});

	test.each([
		["expired", jwt.sign({ sub: "u", roles: [], exp: 1 }, SECRET), /expired/],
		["wrong secret", jwt.sign({ sub: "u" }, "other"), /Invalid/],
		["alg none", jwt.sign({ sub: "u" }, "", { algorithm: "none" }), /Invalid/],
		["HS384", jwt.sign({ sub: "u" }, SECRET, { algorithm: "HS384" }), /Invalid/],
		["no sub", jwt.sign({ roles: ["admin"] }, SECRET, { expiresIn: 60 }), /subject/],
		["agent without agent_id", jwt.sign({ sub: "a", roles: ["agent"] }, SECRET, { expiresIn: 60 }), /agent_id/]
	])("%s is refused", (_name, token, message) => {
		expect(() => verifyToken(SECRET, token)).toThrow(TokenError);
		expect(() => verifyToken(SECRET, token)).toThrow(message);
	});

	test("bearer header parsing", () => {
		expect(bearerToken("Bearer abc.def")).toBe("abc.def");
		expect(bearerToken("bearer xyz")).toBe("xyz");
		expect(bearerToken("Basic abc")).toBeUndefined();
		expect(bearerToken(undefined)).toBeUndefined();
	});

	test("sameSecret compares whole secrets", () => {
		expect(sameSecret("abc", "abc")).toBe(true);
		expect(sameSecret("abc", "abd")).toBe(false);
		expect(sameSecret("ab", "abc")).toBe(false);
	});
});

describe("access", () => {
	const viewer: Principal = { sub: "v", roles: ["viewer"] };
	const operator: Principal = { sub: "o", roles: ["operator"] };
	const admin: Principal = { sub: "a", roles: ["admin"] };
	const agent: Principal = { sub: "agent:1", roles: ["agent"], agent_id: "agent-1" };
	const callback: Principal = { sub: "agent:1", roles: ["agent"], agent_id: "agent-1", task_id: "task-1" };

	test("levels: read < operate < admin", () => {
		expect([viewer, operator, admin].map(p => isAllowed(p, { level: "read" }))).toEqual([true, true, true]);
		expect([viewer, operator, admin].map(p => isAllowed(p, { level: "operate" }))).toEqual([false, true, true]);
		expect([viewer, operator, admin].map(p => isAllowed(p, { level: "admin" }))).toEqual([false, false, true]);
	});

	test("agents reach only actions that accept agents, and only for themselves", () => {
		expect(isAllowed(agent, { level: "read" })).toBe(false);
		expect(isAllowed(agent, { level: "operate", agent: true })).toBe(true);
		expect(actsOnOwnAgent(agent, "agent-1")).toBe(true);
		expect(actsOnOwnAgent(agent, "agent-2")).toBe(false);
		expect(actsOnOwnAgent(operator, "agent-2")).toBe(true);
	});

	test("task reports: own assigned tasks only; callback tokens only for their task", () => {
		expect(mayReportOnTask(agent, "task-5", "agent-1")).toBe(true);
		expect(mayReportOnTask(agent, "task-5", "agent-2")).toBe(false);
		expect(mayReportOnTask(agent, "task-5", null)).toBe(false);
		expect(mayReportOnTask(callback, "task-1", "agent-1")).toBe(true);
		expect(mayReportOnTask(callback, "task-2", "agent-1")).toBe(false);
		expect(mayReportOnTask(operator, "task-2", "agent-9")).toBe(true);
	});
});
