import { createHmac } from "node:crypto";
import { runEmail, sendWebhook, signBody, verifySignature, WEBHOOK_ATTEMPTS, type FetchLike } from "../../src/runtime/notifications";
import type { RunView } from "../../src/domain/pipelines/runs";

const SECRET = "shared-secret";

const run: RunView = {
	run_id: "run-1", created_by: "olive", pipeline_id: "pipeline-1", status: "failed", current_stage: null, completed_stages: [0], progress: 1,
	stages: [
		{ index: 0, name: "ingest", status: "completed", task_id: "t0", result: { rows: 1 }, error: null },
		{ index: 1, name: "load", status: "failed", task_id: "t1", result: null, error: "disk full" }
	],
	input_data: {}, parameters: {}, created_at: "2024-01-01T00:00:00.000Z", updated_at: "2024-01-01T00:01:00.000Z", finished_at: "2024-01-01T00:01:00.000Z"
};

describe("signing", () => {
	const NOW = 1_700_000_000;

	test('sha256=<hex HMAC of "<timestamp>.<body>">', () => {
		const body = JSON.stringify({ a: "ü", b: [1, 2] });
		expect(signBody(SECRET, NOW, body)).toBe(`sha256=${createHmac("sha256", SECRET).update(Buffer.from(`${NOW}.${body}`, "utf8")).digest("hex")}`);
		expect(signBody(SECRET, NOW, body)).toMatch(/^sha256=[0-9a-f]{64}$/);
	});

	test("verification accepts only the same body, timestamp and secret, within the tolerance", () => {
		const body = '{"x":1}';
		const signature = signBody(SECRET, NOW, body);
		const at = { nowSec: NOW + 10 };
		expect(verifySignature(SECRET, body, signature, String(NOW), at)).toBe(true);
		expect(verifySignature(SECRET, '{"x": 1}', signature, String(NOW), at)).toBe(false);
		expect(verifySignature("other", body, signature, String(NOW), at)).toBe(false);
		expect(verifySignature(SECRET, body, signature, String(NOW + 1), at)).toBe(false);
		expect(verifySignature(SECRET, body, undefined, String(NOW), at)).toBe(false);
		expect(verifySignature(SECRET, body, signature, undefined, at)).toBe(false);
		expect(verifySignature(SECRET, body, "sha256=00", String(NOW), at)).toBe(false);
		// A replay: the right signature, too late (or too early).
		expect(verifySignature(SECRET, body, signature, String(NOW), { nowSec: NOW + 301 })).toBe(false);
		expect(verifySignature(SECRET, body, signature, String(NOW), { nowSec: NOW - 301 })).toBe(false);
		expect(verifySignature(SECRET, body, signature, String(NOW), { nowSec: NOW + 301, toleranceSec: 600 })).toBe(true);
	});
});

describe("sendWebhook", () => {
	function scripted(outcomes: Array<number | Error>) {
		const calls: Array<{ url: string; headers: Record<string, string>; body: string }> = [];
		const fetch: FetchLike = async (url, init) => {
			calls.push({ url, headers: init.headers, body: init.body });
			const next = outcomes[Math.min(calls.length - 1, outcomes.length - 1)];
			if (next instanceof Error) throw next;
			return { ok: next >= 200 && next < 300, status: next };
		};
		const waits: number[] = [];
		const sleep = async (ms: number) => void waits.push(ms);
		return { calls, waits, fetch, sleep };
	}
	const delayMs = (attempt: number) => attempt * 100;

	test("a 2xx at once: one signed POST, no waiting", async () => {
		const net = scripted([204]);
		const now = () => 1_700_000_000_500;
		const outcome = await sendWebhook({ url: "http://h/hook", body: '{"a":1}', secret: SECRET, delayMs, fetch: net.fetch, sleep: net.sleep, now });
		expect(outcome).toEqual({ ok: true, attempts: 1, status: 204 });
		expect(net.calls[0]).toEqual({
			url: "http://h/hook",
			body: '{"a":1}',
			headers: { "Content-Type": "application/json", "X-MCP-Timestamp": "1700000000", "X-MCP-Signature": signBody(SECRET, 1_700_000_000, '{"a":1}') }
		});
		expect(net.waits).toEqual([]);
	});

	test("non-2xx and network errors are retried with the backoff until one succeeds, each try signed when it is sent", async () => {
		const net = scripted([500, new Error("ECONNRESET"), 200]);
		let clock = 1_700_000_000_000;
		const now = () => (clock += 1000);
		const outcome = await sendWebhook({ url: "http://h", body: "{}", secret: SECRET, delayMs, fetch: net.fetch, sleep: net.sleep, now });
		expect(outcome).toEqual({ ok: true, attempts: 3, status: 200 });
		expect(net.waits).toEqual([100, 200]);
		expect(net.calls.map(c => c.headers["X-MCP-Timestamp"])).toEqual(["1700000001", "1700000002", "1700000003"]);
		for (const { headers, body } of net.calls)
			expect(verifySignature(SECRET, body, headers["X-MCP-Signature"], headers["X-MCP-Timestamp"], { nowSec: 1_700_000_003 })).toBe(true);
	});

	test("gives up after the attempts, saying why", async () => {
		const net = scripted([503]);
		expect(await sendWebhook({ url: "http://h", body: "{}", secret: SECRET, delayMs, fetch: net.fetch, sleep: net.sleep })).toEqual({
			ok: false, attempts: WEBHOOK_ATTEMPTS, status: 503, error: "answered 503"
		});
		expect(net.calls).toHaveLength(WEBHOOK_ATTEMPTS);
		expect(net.waits).toHaveLength(WEBHOOK_ATTEMPTS - 1);
		const down = scripted([new Error("ECONNREFUSED")]);
		expect(await sendWebhook({ url: "http://h", body: "{}", secret: SECRET, attempts: 2, delayMs, fetch: down.fetch, sleep: down.sleep })).toEqual({
			ok: false, attempts: 2, status: null, error: "ECONNREFUSED"
		});
	});
});

describe("runEmail", () => {
	test("subject names pipeline, run and outcome; text has the stages and the run JSON", () => {
		const mail = runEmail("nightly", run);
		expect(mail.subject).toBe("Pipeline nightly run run-1 failed");
		expect(mail.text).toContain("  1. load: failed (disk full)");
		expect(mail.text).toContain("  0. ingest: completed\n");
		expect(JSON.parse(mail.text.slice(mail.text.indexOf("Run:\n") + 5))).toEqual(run);
	});
});
