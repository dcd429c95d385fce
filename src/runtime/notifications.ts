/**
 * A run's end, told to the outside: a signed webhook POST (retried with backoff) and an email text.
 * The network is injected, so the retry and signing rules are tested without sockets; the server
 * passes its egress policy's fetch.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { RunView } from "../domain/pipelines/runs";
import { failureDetail } from "./egress";

export const SIGNATURE_HEADER = "X-MCP-Signature";
export const TIMESTAMP_HEADER = "X-MCP-Timestamp";
/** Tries per webhook, the first included. */
export const WEBHOOK_ATTEMPTS = 5;
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** How far a receiver should let `X-MCP-Timestamp` be from its clock before it takes a request as replayed. */
export const SIGNATURE_TOLERANCE_SEC = 300;

/**
 * `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with WEBHOOK_SECRET: what a receiver recomputes
 * from the `X-MCP-Timestamp` header and the exact body bytes.
 */
export function signBody(secret: string, timestamp: number | string, body: string): string {
	return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex")}`;
}

export interface VerifyOptions {
	/** Largest distance, in seconds, between the timestamp and now (default SIGNATURE_TOLERANCE_SEC). */
	toleranceSec?: number;
	/** Now, unix seconds (default the clock). */
	nowSec?: number;
}

/**
 * A receiver's check: the timestamp is recent (so a recorded request cannot be replayed later)
 * and the signature matches it and the body, compared in constant time.
 */
export function verifySignature(
	secret: string,
	body: string,
	signature: string | undefined | null,
	timestamp: string | undefined | null,
	{ toleranceSec = SIGNATURE_TOLERANCE_SEC, nowSec = Date.now() / 1000 }: VerifyOptions = {}
): boolean {
	if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
	if (Math.abs(nowSec - Number(timestamp)) > toleranceSec) return false;
	const expected = Buffer.from(signBody(secret, timestamp, body));
	const given = Buffer.from(signature);
	return given.length === expected.length && timingSafeEqual(given, expected);
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{ ok: boolean; status: number }>;

export interface WebhookOptions {
	url: string;
	/** The exact bytes that are signed and sent. */
	body: string;
	/** WEBHOOK_SECRET. */
	secret: string;
	attempts?: number;
	/** Wait after failed attempt `attempt` (1-based) before the next one. */
	delayMs: (attempt: number) => number;
	/** The network: the server's egress policy (`EgressPolicy.fetch`), or a fake in tests. */
	fetch: FetchLike;
	sleep?: (ms: number) => Promise<void>;
	/** Now, in milliseconds (default the clock): each attempt is signed with its own timestamp. */
	now?: () => number;
	timeoutMs?: number;
}

export interface WebhookOutcome {
	ok: boolean;
	attempts: number;
	/** HTTP status of the last answer; null when the last try got none. */
	status: number | null;
	/** Why the last try failed (for the server log). */
	error?: string;
}

const defaultSleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms).unref());

/** The headers of one attempt: signed at the time it is sent, so a late retry is still within a receiver's tolerance. */
export function webhookHeaders(secret: string, body: string, nowMs: number): Record<string, string> {
	const timestamp = Math.floor(nowMs / 1000);
	return { "Content-Type": "application/json", [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signBody(secret, timestamp, body) };
}

/** POSTs until a 2xx or the attempts are spent. Never throws: the outcome says what happened. */
export async function sendWebhook(opts: WebhookOptions): Promise<WebhookOutcome> {
	const attempts = Math.max(1, opts.attempts ?? WEBHOOK_ATTEMPTS);
	const sleep = opts.sleep ?? defaultSleep;
	const now = opts.now ?? Date.now;
	let outcome: WebhookOutcome = { ok: false, attempts: 0, status: null };
	for (let attempt = 1; attempt <= attempts; attempt++) {
		try {
			const headers = webhookHeaders(opts.secret, opts.body, now());
			const res = await opts.fetch(opts.url, { method: "POST", headers, body: opts.body, signal: AbortSignal.timeout(opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS) });
			if (res.ok) return { ok: true, attempts: attempt, status: res.status };
			outcome = { ok: false, attempts: attempt, status: res.status, error: `answered ${res.status}` };
		} catch (err) {
			outcome = { ok: false, attempts: attempt, status: null, error: failureDetail(err) };
		}
		if (attempt < attempts) await sleep(opts.delayMs(attempt));
	}
	return outcome;
}

export interface EmailText {
	subject: string;
	text: string;
}

/** The mail for a run's end: a short summary a person reads, then the run JSON for tools. */
export function runEmail(pipelineName: string, run: RunView): EmailText {
	const lines = [
		`Pipeline ${pipelineName} (${run.pipeline_id}), run ${run.run_id}: ${run.status}.`,
		`Started ${run.created_at}, finished ${run.finished_at ?? "-"}; progress ${Math.round(run.progress * 100)} %.`,
		"",
		"Stages:",
		...run.stages.map(stage => `  ${stage.index}. ${stage.name}: ${stage.status}${stage.error ? ` (${stage.error})` : ""}`),
		"",
		"Run:",
		JSON.stringify(run, null, 2)
	];
	return { subject: `Pipeline ${pipelineName} run ${run.run_id} ${run.status}`, text: lines.join("\n") };
}
