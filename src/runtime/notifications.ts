/**
 * A run's end, told to the outside: a signed webhook POST (retried with backoff) and an email text.
 * The network is injected, so the retry and signing rules are tested without sockets.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { RunView } from "../domain/pipelines/runs";

export const SIGNATURE_HEADER = "X-MCP-Signature";
/** Tries per webhook, the first included. */
export const WEBHOOK_ATTEMPTS = 5;
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`: what a receiver recomputes with the shared secret. */
export function signBody(secret: string, body: string): string {
	return `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;
}

/** Constant-time check of a received signature header against the body. */
export function verifySignature(secret: string, body: string, header: string | undefined | null): boolean {
	if (!header) return false;
	const expected = Buffer.from(signBody(secret, body));
	const given = Buffer.from(header);
	return given.length === expected.length && timingSafeEqual(given, expected);
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{ ok: boolean; status: number }>;

export interface WebhookOptions {
	url: string;
	/** The exact bytes that are signed and sent. */
	body: string;
	secret: string;
	attempts?: number;
	/** Wait after failed attempt `attempt` (1-based) before the next one. */
	delayMs: (attempt: number) => number;
	fetch?: FetchLike;
	sleep?: (ms: number) => Promise<void>;
	timeoutMs?: number;
}

export interface WebhookOutcome {
	ok: boolean;
	attempts: number;
	/** HTTP status of the last answer; null when the last try got none. */
	status: number | null;
	/** Why the last try failed. */
	error?: string;
}

const defaultFetch: FetchLike = async (url, init) => {
	const res = await fetch(url, init);
	// Only the status matters; drop the body so the socket goes back to the pool.
	await res.body?.cancel();
	return { ok: res.ok, status: res.status };
};

const defaultSleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms).unref());

/** POSTs until a 2xx or the attempts are spent. Never throws: the outcome says what happened. */
export async function sendWebhook(opts: WebhookOptions): Promise<WebhookOutcome> {
	const attempts = Math.max(1, opts.attempts ?? WEBHOOK_ATTEMPTS);
	const post = opts.fetch ?? defaultFetch;
	const sleep = opts.sleep ?? defaultSleep;
	const headers = { "Content-Type": "application/json", [SIGNATURE_HEADER]: signBody(opts.secret, opts.body) };
	let outcome: WebhookOutcome = { ok: false, attempts: 0, status: null };
	for (let attempt = 1; attempt <= attempts; attempt++) {
		try {
			const res = await post(opts.url, { method: "POST", headers, body: opts.body, signal: AbortSignal.timeout(opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS) });
			if (res.ok) return { ok: true, attempts: attempt, status: res.status };
			outcome = { ok: false, attempts: attempt, status: res.status, error: `answered ${res.status}` };
		} catch (err) {
			outcome = { ok: false, attempts: attempt, status: null, error: (err as Error).message || String(err) };
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
