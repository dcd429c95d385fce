/**
 * The one egress policy for every URL the server calls: HTTP agents' task and health endpoints,
 * and run webhooks. Rules are CIDRs, single IPs (IPv4 or IPv6; an IPv4-mapped IPv6 address is
 * judged as its IPv4 address too) or host names (`name`, or `*.name` for its subdomains).
 * Allow wins over deny; what neither list names is allowed.
 *
 * A URL is judged twice: when a client gives it (`refusal`, so the request is refused with 422),
 * and at every connect on the address actually dialled (`fetch` goes through a dispatcher whose
 * connector refuses denied literals and whose `lookup` refuses a name when any of its addresses is
 * denied), so a name that resolves elsewhere later (DNS rebinding) still gets nowhere. Redirects
 * are never followed: a 3xx is a failed call. HTTPS trusts Node's root certificates, and with
 * OUTBOUND_CA_FILE that file's CA too (re-read on SIGHUP).
 */
import dns from "node:dns";
import net, { type LookupFunction } from "node:net";
import { Agent, buildConnector, fetch as undiciFetch } from "undici";
import { onCertificateReload } from "../platform/certificate-reload";
import { ConfigError, type EgressSettings, type TlsSettings } from "../platform/config";
import { outboundCa } from "../platform/tls";
import type { FieldError } from "../types";

export type Lookup = (hostname: string, options: dns.LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

/** Thrown (as a fetch's `cause`) when the policy refuses a connect. */
export class EgressDeniedError extends Error {
	readonly code = "EGRESS_DENIED";
	constructor(message: string) {
		super(message);
		this.name = "EgressDeniedError";
	}
}

/** Why an outbound call failed, in words a viewer may read (no status, no URL). */
export type EgressProblem = "denied" | "timeout" | "unreachable" | "redirect" | "status";

export const PROBLEM_TEXT: Readonly<Record<EgressProblem, string>> = {
	denied: "it is not allowed by the egress policy",
	timeout: "it timed out",
	unreachable: "it could not be reached",
	redirect: "it answered with a redirect, which is not followed",
	status: "it answered with an error"
};

export interface EgressRequest {
	method?: string;
	headers?: Record<string, string>;
	body?: string;
	signal?: AbortSignal;
}

/** The answer of an outbound call, its body already drained: only the status matters to callers. */
export interface EgressAnswer {
	ok: boolean;
	status: number;
}

const HOST_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

const family = (address: string) => (net.isIPv6(address) ? "ipv6" : "ipv4");

/** `[::1]` → `::1`, `Example.COM.` → `example.com`. */
function bareHost(hostname: string): string {
	const host = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
	return host.toLowerCase().replace(/\.$/, "");
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:7f00:1` → `127.0.0.1`), whatever its spelling. */
export function mappedIPv4(address: string): string | undefined {
	if (!net.isIPv6(address)) return undefined;
	// The URL parser writes every IPv6 address in its one canonical form.
	const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
	const match = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
	if (!match) return undefined;
	const [high, low] = [parseInt(match[1], 16), parseInt(match[2], 16)];
	return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}

/** A URL as it may be logged or audited: no userinfo, no query, no fragment. */
export function redactUrl(url: string): string {
	try {
		const u = new URL(url);
		return `${u.protocol}//${u.host}${u.pathname}`;
	} catch {
		return "(not a URL)";
	}
}

/** Why a call failed (the server log's detail): the policy's refusal, a timeout, or the network's error code. */
export function failureDetail(err: unknown): string {
	const e = err as Error & { cause?: Error & { code?: string } };
	if (e?.name === "TimeoutError") return "timed out";
	const cause = e?.cause;
	if (cause) return cause instanceof EgressDeniedError ? cause.message : cause.code ?? cause.message;
	return e?.message || String(err);
}

/** Which of the viewer-readable problems a thrown error from `fetch` is. */
export function problemOf(err: unknown): EgressProblem {
	const e = err as Error & { cause?: unknown };
	if (e instanceof EgressDeniedError || e?.cause instanceof EgressDeniedError) return "denied";
	if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timeout";
	return "unreachable";
}

/** The problem of an answer that is not a 2xx. */
export const problemOfStatus = (status: number): EgressProblem => (status >= 300 && status < 400 ? "redirect" : "status");

class Rules {
	readonly addresses = new net.BlockList();
	readonly names = new Set<string>();
	readonly suffixes: string[] = [];
	addressCount = 0;

	constructor(entries: readonly string[], variable: string) {
		for (const raw of entries) {
			const entry = bareHost(raw.trim());
			const [ip, prefix, extra] = entry.split("/");
			const max = net.isIPv6(ip) ? 128 : 32;
			const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
			if (net.isIP(ip) && extra === undefined && bits <= max) {
				this.addresses.addSubnet(ip, bits, family(ip));
				this.addressCount++;
			} else if (HOST_NAME.test(entry)) {
				if (entry.startsWith("*.")) this.suffixes.push(entry.slice(1));
				else this.names.add(entry);
			} else throw new ConfigError(variable, `"${raw}" is not a CIDR, an IP address or a host name`);
		}
	}

	hasAddress(address: string): boolean {
		const v4 = mappedIPv4(address);
		return this.addresses.check(address, family(address)) || (v4 !== undefined && this.addresses.check(v4, "ipv4"));
	}

	hasName(host: string): boolean {
		return this.names.has(host) || this.suffixes.some(suffix => host.endsWith(suffix));
	}
}

const systemLookup: Lookup = (hostname, options, callback) => dns.lookup(hostname, options, callback);

export interface EgressPolicyOptions {
	/** How names are resolved, before a URL is accepted and at every connect (default `dns.lookup`). */
	lookup?: Lookup;
	/** OUTBOUND_CA_FILE: HTTPS trusts Node's root certificates and this file's; `reloadCa` reads it again. */
	caFile?: string;
}

export class EgressPolicy {
	private readonly allow: Rules;
	private readonly deny: Rules;
	private readonly lookup: Lookup;
	private readonly caFile?: string;
	private connector: buildConnector.connector;
	private dispatcher?: Agent;

	constructor(settings: EgressSettings, options: EgressPolicyOptions = {}) {
		this.allow = new Rules(settings.allow, "EGRESS_ALLOW");
		this.deny = new Rules(settings.deny, "EGRESS_DENY");
		this.lookup = options.lookup ?? systemLookup;
		this.caFile = options.caFile;
		this.connector = this.newConnector();
	}

	private newConnector(): buildConnector.connector {
		return buildConnector({ lookup: this.guardedLookup, ...(this.caFile ? { ca: outboundCa(this.caFile) } : {}) });
	}

	/** OUTBOUND_CA_FILE read again: new connections trust what it holds now, pooled ones keep going. Throws (keeping the old CA) when it cannot be read. */
	reloadCa(): void {
		if (this.caFile) this.connector = this.newConnector();
	}

	/** May the server connect to this IP address? */
	allowsAddress(address: string): boolean {
		return this.allow.hasAddress(address) || !this.deny.hasAddress(address);
	}

	/** The verdict of the name lists alone: allowed outright, denied outright, or up to its addresses. */
	private nameVerdict(host: string): "allow" | "deny" | "addresses" {
		if (this.allow.hasName(host)) return "allow";
		return this.deny.hasName(host) ? "deny" : "addresses";
	}

	/**
	 * Why a URL a client gave is refused ("The field …"), or undefined when it is accepted. A name
	 * that does not resolve now is accepted: it is judged again, on its addresses, at every call.
	 */
	async refusal(url: string): Promise<string | undefined> {
		const parsed = URL.canParse(url) ? new URL(url) : undefined;
		if (!parsed) return "must be an absolute http or https URL";
		if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "must be an http or https URL";
		const host = bareHost(parsed.hostname);
		if (net.isIP(host)) return this.allowsAddress(host) ? undefined : "names an address the egress policy does not allow";
		const verdict = this.nameVerdict(host);
		if (verdict !== "addresses") return verdict === "deny" ? "names a host the egress policy does not allow" : undefined;
		if (this.deny.addressCount === 0) return undefined;
		const addresses = await new Promise<dns.LookupAddress[]>(resolve =>
			this.lookup(host, { all: true }, (err, found) => resolve(err ? [] : found))
		);
		return addresses.some(a => !this.allowsAddress(a.address)) ? "names a host that resolves to an address the egress policy does not allow" : undefined;
	}

	/** The refusals of several given URLs, as the contract's 422 details (`field` named as in the request). */
	async refusedFields(urls: Record<string, string | undefined | null>): Promise<FieldError[]> {
		const checked = await Promise.all(
			Object.entries(urls).map(async ([field, url]): Promise<FieldError | undefined> => {
				const why = url ? await this.refusal(url) : undefined;
				return why ? { field, message: `The '${field}' field ${why}.`, type: "egress" } : undefined;
			})
		);
		return checked.filter((f): f is FieldError => f !== undefined);
	}

	/** The connect-time `lookup`: resolves as asked, but refuses the name if any of its addresses is denied. */
	private readonly guardedLookup = ((hostname: string, options: dns.LookupOptions, callback: (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void) => {
		const host = bareHost(hostname);
		const verdict = this.nameVerdict(host);
		if (verdict === "deny") return callback(new EgressDeniedError(`${host} is on the egress deny list`), []);
		this.lookup(host, { ...options, all: true }, (err, addresses) => {
			if (err) return callback(err, []);
			const denied = verdict === "addresses" ? addresses.find(a => !this.allowsAddress(a.address)) : undefined;
			if (denied) return callback(new EgressDeniedError(`${host} resolved to ${denied.address}, which the egress policy does not allow`), []);
			if (!addresses.length) return callback(Object.assign(new Error(`${host} has no address`), { code: "ENOTFOUND" }), []);
			if (options.all) return callback(null, addresses);
			callback(null, addresses[0].address, addresses[0].family);
		});
	}) as unknown as LookupFunction;

	/** One pool for every call through this policy; its connector checks each connect. */
	private guardedDispatcher(): Agent {
		if (this.dispatcher) return this.dispatcher;
		return (this.dispatcher = new Agent({
			connect: (options, callback) => {
				// An IP literal is dialled without a lookup: judge it here.
				const host = bareHost(options.hostname);
				if (net.isIP(host) && !this.allowsAddress(host))
					return callback(new EgressDeniedError(`${host} is not allowed by the egress policy`), null);
				this.connector(options, callback);
			}
		}));
	}

	/**
	 * An outbound call through the policy, never following a redirect. A URL's user:password is
	 * sent as Basic authorization (fetch refuses URLs with credentials). Throws what fetch throws;
	 * `problemOf` and `failureDetail` tell a viewer and the log what it was.
	 */
	async fetch(url: string, init: EgressRequest = {}): Promise<EgressAnswer> {
		const target = new URL(url);
		if (target.protocol !== "http:" && target.protocol !== "https:") throw new EgressDeniedError(`${target.protocol} URLs are not allowed`);
		const headers: Record<string, string> = { ...init.headers };
		if (target.username || target.password) {
			headers.Authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString("base64")}`;
			target.username = "";
			target.password = "";
		}
		const res = await undiciFetch(target, { ...init, headers, redirect: "manual", dispatcher: this.guardedDispatcher() });
		// Only the status matters; drop the body so the socket goes back to the pool.
		await res.body?.cancel().catch(() => undefined);
		return { ok: res.ok, status: res.status };
	}

	async close(): Promise<void> {
		await this.dispatcher?.close();
		this.dispatcher = undefined;
	}
}

const shared = new WeakMap<EgressSettings, EgressPolicy>();

/** The policy of a node's configuration: one per config, shared by its services (one connection pool); SIGHUP re-reads its CA. */
export function egressPolicy(config: { egress: EgressSettings; tls: TlsSettings }): EgressPolicy {
	let policy = shared.get(config.egress);
	if (!policy) {
		const created = (policy = new EgressPolicy(config.egress, { caFile: config.tls.outboundCaFile }));
		shared.set(config.egress, created);
		if (config.tls.outboundCaFile) onCertificateReload(config, "OUTBOUND_CA_FILE", () => created.reloadCa());
	}
	return policy;
}
