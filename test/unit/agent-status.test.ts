import {
	acceptsWork, isSilent, statusAfterHealthCheck, statusAfterHeartbeat, statusAfterRegistration, statusAfterSilence
} from "../../src/domain/agents/status";

test("heartbeats revive agents but never undo draining", () => {
	expect(statusAfterHeartbeat("offline", undefined)).toBe("active");
	expect(statusAfterHeartbeat("unhealthy", undefined)).toBe("active");
	expect(statusAfterHeartbeat("active", "busy")).toBe("busy");
	expect(statusAfterHeartbeat("busy", "active")).toBe("active");
	expect(statusAfterHeartbeat("draining", "active")).toBe("draining");
	expect(statusAfterHeartbeat("active", "draining")).toBe("draining");
});

test("silence: older than the timeout → offline, once", () => {
	const now = Date.parse("2026-01-01T00:01:00Z");
	expect(isSilent(Date.parse("2026-01-01T00:00:00Z"), now, 30_000)).toBe(true);
	expect(isSilent(Date.parse("2026-01-01T00:00:45Z"), now, 30_000)).toBe(false);
	expect(statusAfterSilence("busy")).toBe("offline");
	expect(statusAfterSilence("offline")).toBeNull();
});

test("health polls: failure → unhealthy for working agents; success heals", () => {
	expect(statusAfterHealthCheck("active", false)).toBe("unhealthy");
	expect(statusAfterHealthCheck("busy", false)).toBe("unhealthy");
	expect(statusAfterHealthCheck("draining", false)).toBeNull();
	expect(statusAfterHealthCheck("unhealthy", true)).toBe("active");
	expect(statusAfterHealthCheck("offline", true)).toBe("active");
	expect(statusAfterHealthCheck("active", true)).toBeNull();
});

test("registration and who takes work", () => {
	expect(statusAfterRegistration(undefined)).toBe("active");
	expect(statusAfterRegistration("offline")).toBe("active");
	expect(statusAfterRegistration("draining")).toBe("draining");
	expect(["active", "busy", "unhealthy", "offline", "draining"].filter(s => acceptsWork(s as never))).toEqual(["active"]);
});
