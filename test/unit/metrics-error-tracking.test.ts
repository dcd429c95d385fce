/**
 * Error tracking against a fake Sentry endpoint on loopback: server errors reported once, client
 * errors never, and without SENTRY_DSN the SDK is not even loaded.
 */
import { execSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Errors } from "moleculer";
import { ApiError } from "../../src/platform/errors";
import { errorTrackingActive, flushErrorReports, httpStatusOf, isServerError, reportServerError } from "../../src/platform/error-tracking";
import { tempDir, testConfig } from "../support/broker";

interface SentryEvent {
	exception?: { values?: Array<{ type?: string; value?: string }> };
	tags?: Record<string, string>;
	request?: unknown;
}

async function fakeSentry() {
	const events: SentryEvent[] = [];
	const server = http.createServer((req, res) => {
		let body = "";
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			// An envelope: a header line, then item header / payload pairs.
			const parts = body.split("\n").filter(Boolean);
			for (let i = 1; i + 1 < parts.length; i += 2) if (JSON.parse(parts[i]).type === "event") events.push(JSON.parse(parts[i + 1]) as SentryEvent);
			res.end("{}");
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return { dsn: `http://public@127.0.0.1:${port}/7`, events, close: () => new Promise<void>(resolve => server.close(() => resolve())) };
}

const messages = (events: SentryEvent[]) => events.map(e => e.exception?.values?.[0]?.value);

const ROOT = path.resolve(__dirname, "../..");
const BUILT = ["dist/src/platform/error-tracking.js", "dist/src/platform/broker-options.js"];
const SOURCES = ["src/platform/error-tracking.ts", "src/platform/broker-options.ts"];
const mtime = (file: string) => fs.statSync(path.join(ROOT, file)).mtimeMs;

/** `npm test` builds first; a bare `npx jest` on a fresh or stale checkout builds here. */
function ensureBuilt() {
	const missing = BUILT.some(file => !fs.existsSync(path.join(ROOT, file)));
	const oldest = missing ? 0 : Math.min(...BUILT.map(mtime));
	if (missing || SOURCES.some(file => mtime(file) > oldest)) execSync("npm run build --silent", { cwd: ROOT, stdio: "inherit" });
}

/**
 * Sentry runs in a child process: it installs process-wide handlers (uncaught exceptions) that
 * would outlive this file in a reused jest worker and trip the files after it.
 */
const SENTRY_SCRIPT = `
const { ServiceBroker, Errors } = require("moleculer");
const { brokerOptions } = require("./dist/src/platform/broker-options");
const { loadConfig } = require("./dist/src/platform/config");
const { ApiError } = require("./dist/src/platform/errors");
const { errorTrackingActive, flushErrorReports, reportServerError } = require("./dist/src/platform/error-tracking");
const env = { DATA_DIR: process.env.DATA_DIR, LOG_LEVEL: "fatal", JWT_SECRET: "x", API_KEY: "y", SENTRY_DSN: process.env.SENTRY_DSN };
const config = loadConfig(env);
(async () => {
	const err = new Error("database on fire");
	reportServerError(config, err, { request_id: "req-1", path: "/api/v1/tasks", method: "POST", status: 500 });
	reportServerError(config, err, { request_id: "req-1" });
	reportServerError(config, new ApiError("CONFLICT", "busy"));
	if (!errorTrackingActive()) throw new Error("not active");
	await flushErrorReports(5000);

	// Through the broker's errorHandler, two nodes over the in-memory transporter.
	const clusterEnv = { ...env, TRANSPORTER: "Fake", NAMESPACE: "err-" + process.pid };
	const caller = new ServiceBroker({ ...brokerOptions(loadConfig(clusterEnv)), nodeID: "caller-node" });
	const worker = new ServiceBroker({ ...brokerOptions(loadConfig(clusterEnv)), nodeID: "worker-node" });
	worker.createService({
		name: "fragile",
		actions: {
			crash() { throw new Errors.MoleculerError("disk full", 500, "DISK_FULL"); },
			refuse() { throw new ApiError("FORBIDDEN", "no"); }
		}
	});
	await Promise.all([caller.start(), worker.start()]);
	await caller.waitForServices("fragile");
	const outcomes = [];
	for (const action of ["fragile.crash", "fragile.refuse"])
		outcomes.push(await caller.call(action, {}, { requestID: "req-2", retries: 0 }).then(() => "resolved", e => e.message));
	await flushErrorReports(5000);
	await Promise.all([caller.stop(), worker.stop()]);
	process.stdout.write(JSON.stringify({ outcomes }));
})().catch(e => { console.error(e); process.exit(1); });
`;

describe("error tracking", () => {
	let sentry: Awaited<ReturnType<typeof fakeSentry>>;
	beforeAll(async () => {
		ensureBuilt();
		sentry = await fakeSentry();
	});
	afterAll(() => sentry.close());

	test("no SENTRY_DSN: nothing is loaded, nothing sent", async () => {
		reportServerError(testConfig(), new Error("unseen"));
		expect(errorTrackingActive()).toBe(false);
		expect(await flushErrorReports(100)).toBe(false);
	});

	test("which errors are the server's", () => {
		expect(isServerError(new Error("plain"))).toBe(true);
		expect(isServerError(new Errors.MoleculerError("boom", 500))).toBe(true);
		expect(isServerError(new Errors.RequestTimeoutError({ action: "a.b", nodeID: "n" }))).toBe(true);
		expect(isServerError(new ApiError("NOT_FOUND", "nope"))).toBe(false);
		expect(isServerError(new ApiError("NOT_READY", "later"))).toBe(false);
		expect(isServerError(new Errors.MoleculerClientError("task failed", 422, "TASK_FAILED"))).toBe(false);
		expect(isServerError(new Errors.ValidationError("bad", "VALIDATION_ERROR", []))).toBe(false);
		expect(httpStatusOf({ type: "entity.parse.failed", status: 400 })).toBe(400);
	});

	test("SENTRY_DSN set: server errors reported once each, with tags, by the node that ran the action; client errors never", async () => {
		const child = spawn(process.execPath, ["-e", SENTRY_SCRIPT], {
			cwd: ROOT,
			env: { ...process.env, SENTRY_DSN: sentry.dsn, DATA_DIR: tempDir("mcp-sentry-") },
			stdio: ["ignore", "pipe", "pipe"]
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", chunk => (stdout += chunk));
		child.stderr.on("data", chunk => (stderr += chunk));
		const code = await new Promise<number | null>(resolve => child.once("exit", resolve));
		expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
		expect(JSON.parse(stdout)).toEqual({ outcomes: ["disk full", "no"] });

		expect(messages(sentry.events)).toEqual(["database on fire", "disk full"]);
		expect(sentry.events[0].tags).toMatchObject({ request_id: "req-1", path: "/api/v1/tasks", method: "POST", status: "500" });
		expect(sentry.events[1].tags).toMatchObject({ request_id: "req-2", action: "fragile.crash", node_id: "worker-node" });
		// Nothing about the request beyond its method and path leaves the process.
		for (const event of sentry.events) expect(JSON.stringify(event.request ?? {})).not.toMatch(/authorization|cookie|headers/i);
	});
});
