/**
 * The Moleculer transporter a node joins with, picked by TRANSPORTER's URL scheme from `TRANSPORTERS`:
 * - `nats://` (NATS): credentials as user:password in the URL, TRANSPORTER_TOKEN, or an nkey or JWT
 *   creds file in TRANSPORTER_CREDS_FILE; TLS upgraded in the protocol when TRANSPORTER_TLS_CA_FILE
 *   (trust the server) or TRANSPORTER_TLS_CERT_FILE and _KEY_FILE (mutual TLS) are set.
 * - `amqp://`, `amqps://` (RabbitMQ, amqplib): user, password and vhost in the URL; TLS with amqps://,
 *   where the TRANSPORTER_TLS_* files apply.
 * - `redis://`, `rediss://` (Redis pub/sub, ioredis): user and password in the URL; TLS with rediss://,
 *   where the TRANSPORTER_TLS_* files apply.
 * A variable that cannot apply to the URL (TRANSPORTER_TOKEN with amqp://, a CA file with plain
 * redis://) stops the node, naming it: ignored, it would leave the bus open or in the clear.
 * Anything else (`TCP`, `mqtt://`, …) goes to Moleculer as it stands, with none of these variables.
 */
import fs from "node:fs";
import path from "node:path";
import type { BrokerOptions } from "moleculer";
import { credsAuthenticator, nkeyAuthenticator } from "nats";
import type { EnvConfig, TlsSettings } from "./config";
import { ConfigError } from "./config";
import { RedisTransporter } from "./redis-transporter";
import { keyPair, readConfigFile } from "./tls";

/**
 * nats.js's `tls` option. The files go by name: nats.js reads them at every connect and reconnect,
 * so a rotated certificate is used from the next reconnect on. Read here once too, so a missing or
 * mismatched file stops the node at start, naming its variable.
 */
function natsTls(tls: TlsSettings): Record<string, string> | undefined {
	const { transporterCaFile: caFile, transporterCertFile: certFile, transporterKeyFile: keyFile } = tls;
	if (!caFile && !certFile) return undefined;
	const files: Record<string, string> = {};
	if (caFile) {
		readConfigFile("TRANSPORTER_TLS_CA_FILE", caFile);
		files.caFile = path.resolve(caFile);
	}
	if (certFile && keyFile) {
		keyPair("TRANSPORTER_TLS_CERT_FILE", certFile, "TRANSPORTER_TLS_KEY_FILE", keyFile);
		Object.assign(files, { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) });
	}
	return files;
}

/** A user nkey's seed, as an nkey file holds it (and the second block of a creds file). */
const USER_SEED = /\bSU[A-Z2-7]{56}\b/;

/**
 * The servers without credentials, and the credentials decoded. Moleculer would take the URL's
 * user and password as they stand, percent-encoded, so a password with `@`, `/` or `%` in it (as
 * generated ones have) would never match; and it sets them from the URL over any given apart.
 */
function natsServers(url: string): { servers: string[]; user?: string; pass?: string } {
	let user: string | undefined;
	let pass: string | undefined;
	const servers = url.split(",").map(entry => {
		let parsed: URL;
		try {
			parsed = new URL(entry.trim());
		} catch {
			throw new ConfigError("TRANSPORTER", `is not a URL: ${entry.trim().replace(/\/\/[^@/]*@/, "//…@")}`);
		}
		try {
			if (parsed.username && user === undefined) user = decodeURIComponent(parsed.username);
			if (parsed.password && pass === undefined) pass = decodeURIComponent(parsed.password);
		} catch {
			throw new ConfigError("TRANSPORTER", "holds a user or password that is not valid percent-encoding");
		}
		parsed.username = "";
		parsed.password = "";
		return parsed.toString().replace(/\/$/, "");
	});
	return { servers, ...(user !== undefined ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}

function credsFileAuthenticator(credsFile: string) {
	let creds: string;
	try {
		creds = fs.readFileSync(credsFile, "utf8");
	} catch (err) {
		throw new ConfigError("TRANSPORTER_CREDS_FILE", `cannot be read: ${(err as Error).message}`);
	}
	// A creds file (`nsc`'s: the user's JWT, then its seed), or a bare user nkey seed (nkey authentication).
	if (/-{3,}BEGIN NATS USER JWT-{3,}/.test(creds)) return credsAuthenticator(new TextEncoder().encode(creds));
	const seed = USER_SEED.exec(creds);
	if (seed) return nkeyAuthenticator(new TextEncoder().encode(seed[0]));
	throw new ConfigError("TRANSPORTER_CREDS_FILE", "holds neither a NATS creds file (user JWT and seed) nor a user nkey seed (SU…)");
}

/** The TRANSPORTER_TLS_* files as Node's TLS options take them (contents), read and checked now, naming the variable that fails. */
function tlsFiles(tls: TlsSettings): { ca?: Buffer[]; cert?: Buffer; key?: Buffer } | undefined {
	const { transporterCaFile: caFile, transporterCertFile: certFile, transporterKeyFile: keyFile } = tls;
	if (!caFile && !certFile) return undefined;
	return {
		...(caFile ? { ca: [readConfigFile("TRANSPORTER_TLS_CA_FILE", caFile)] } : {}),
		...(certFile && keyFile ? keyPair("TRANSPORTER_TLS_CERT_FILE", certFile, "TRANSPORTER_TLS_KEY_FILE", keyFile) : {})
	};
}

/** The first TRANSPORTER_TLS_* variable set, for a refusal that names it. */
function tlsVariable(tls: TlsSettings): string | undefined {
	if (tls.transporterCaFile) return "TRANSPORTER_TLS_CA_FILE";
	if (tls.transporterCertFile) return "TRANSPORTER_TLS_CERT_FILE";
	return undefined;
}

/** A URL with its user and password replaced, for messages and logs. */
export function redactedUrl(url: string): string {
	return url.replace(/\/\/[^@/]*@/g, "//…@");
}

function parseUrl(entry: string): URL {
	try {
		return new URL(entry.trim());
	} catch {
		throw new ConfigError("TRANSPORTER", `is not a URL: ${redactedUrl(entry.trim())}`);
	}
}

function decoded(part: string): string {
	try {
		return decodeURIComponent(part);
	} catch {
		throw new ConfigError("TRANSPORTER", "holds a user or password that is not valid percent-encoding");
	}
}

type TransporterOption = NonNullable<BrokerOptions["transporter"]>;

interface TransporterKind {
	/** How the README and messages call it. */
	label: string;
	/** URL schemes (lower case, without `:`), and whether each one is TLS. */
	schemes: Record<string, { tls: boolean }>;
	/** Where this transporter's credentials go, for the refusal of TRANSPORTER_TOKEN / _CREDS_FILE when it takes none of them. */
	credentials: string;
	build(url: string, config: EnvConfig): TransporterOption;
}

function nats(url: string, config: EnvConfig): TransporterOption {
	const { token, credsFile } = config.transporterAuth;
	// `servers`, not `url`: Moleculer reads credentials out of `url` itself, undecoded (see `natsServers`).
	const options: Record<string, unknown> = natsServers(url);
	if (token) options.token = token;
	if (credsFile) options.authenticator = credsFileAuthenticator(credsFile);
	const tls = natsTls(config.tls);
	if (tls) options.tls = tls;
	return { type: "NATS", options } as TransporterOption;
}

/**
 * The URLs of `kind` in TRANSPORTER (a list for NATS and AMQP), each of one of its schemes; with
 * TRANSPORTER_TLS_* set, every one of them TLS (a plain URL would ignore the files and talk in the clear).
 */
function urlsOf(kind: TransporterKind, url: string, config: EnvConfig, separator: RegExp | null): URL[] {
	const entries = separator ? url.split(separator).map(s => s.trim()).filter(Boolean) : [url.trim()];
	const parsed = entries.map(parseUrl);
	for (const u of parsed) {
		const scheme = u.protocol.replace(/:$/, "").toLowerCase();
		if (!kind.schemes[scheme])
			throw new ConfigError("TRANSPORTER", `mixes transporters: ${redactedUrl(u.toString())} is not ${Object.keys(kind.schemes).map(s => `${s}://`).join(" or ")}`);
		const variable = tlsVariable(config.tls);
		if (variable && !kind.schemes[scheme].tls) {
			const tlsScheme = Object.keys(kind.schemes).find(s => kind.schemes[s].tls);
			throw new ConfigError(variable, `needs TLS in TRANSPORTER: ${scheme}:// is plain TCP and would ignore it; use ${tlsScheme}://`);
		}
	}
	return parsed;
}

/**
 * RabbitMQ through Moleculer's AMQP transporter. `prefetch`: Moleculer's default is 1, and it acks a
 * request only once its handler has answered, so a node would run one request at a time (an agent
 * node one task at a time however many slots it has, and every other call to it waiting behind a long
 * task). As many as the node's bulkhead admits, like NATS and Redis deliver them.
 */
function amqp(url: string, config: EnvConfig): TransporterOption {
	const urls = urlsOf(TRANSPORTERS.amqp, url, config, /[;,]/);
	const options: Record<string, unknown> = {
		url: urls.map(u => u.toString()),
		prefetch: config.broker.bulkheadConcurrency + config.broker.bulkheadMaxQueueSize
	};
	// amqplib passes socketOptions to net/tls.connect (Moleculer adds the server name). `noDelay`: amqplib
	// leaves Nagle's algorithm on, and a small request then waits for the delayed ACK: 40 ms a round trip on Linux.
	options.socketOptions = { noDelay: true, ...(tlsFiles(config.tls) ?? {}) };
	return { type: "AMQP", options } as TransporterOption;
}

/** Redis pub/sub through Moleculer's Redis transporter (our subclass): ioredis options from the URL (decoded, unlike a bare URL string would be for TLS). */
function redis(url: string, config: EnvConfig): TransporterOption {
	if (/[,;]/.test(url)) throw new ConfigError("TRANSPORTER", "names one Redis server: Moleculer's Redis transporter takes one redis:// or rediss:// URL");
	const [u] = urlsOf(TRANSPORTERS.redis, url, config, null);
	const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
	if (!Number.isInteger(db) || db < 0) throw new ConfigError("TRANSPORTER", `names Redis database "${u.pathname.slice(1)}": a number is needed (redis://host:6379/0)`);
	const options: Record<string, unknown> = {
		host: u.hostname.replace(/^\[|\]$/g, ""),
		port: Number(u.port || 6379),
		db,
		...(u.username ? { username: decoded(u.username) } : {}),
		...(u.password ? { password: decoded(u.password) } : {})
	};
	if (u.protocol === "rediss:") options.tls = { ...(tlsFiles(config.tls) ?? {}) };
	// An instance (one per broker): Moleculer's own class, repaired for outages (see redis-transporter.ts).
	return new RedisTransporter(options as never) as TransporterOption;
}

/** The transporters TRANSPORTER may name by URL scheme. One more: an entry here, and its readiness probe in src/gateway/readiness.ts. */
export const TRANSPORTERS = {
	nats: { label: "NATS", schemes: { nats: { tls: true } }, credentials: "", build: nats },
	amqp: {
		label: "RabbitMQ",
		schemes: { amqp: { tls: false }, amqps: { tls: true } },
		credentials: "RabbitMQ takes its user and password in the URL (amqp://user:password@host:5672/vhost, percent-encoded)",
		build: amqp
	},
	redis: {
		label: "Redis",
		schemes: { redis: { tls: false }, rediss: { tls: true } },
		credentials: "Redis takes its user and password in the URL (redis://user:password@host:6379, percent-encoded)",
		build: redis
	}
} satisfies Record<string, TransporterKind>;

export type TransporterName = keyof typeof TRANSPORTERS;

/** Which of `TRANSPORTERS` a TRANSPORTER value names, by its (first) URL's scheme; undefined for anything else (`TCP`, `mqtt://`, …). */
export function transporterKind(url: string | undefined): TransporterName | undefined {
	const scheme = /^\s*([a-z][a-z0-9+.-]*):\/\//i.exec(url ?? "")?.[1]?.toLowerCase();
	if (!scheme) return undefined;
	return (Object.keys(TRANSPORTERS) as TransporterName[]).find(name => scheme in TRANSPORTERS[name].schemes);
}

export function transporterOptions(config: EnvConfig): BrokerOptions["transporter"] {
	const url = config.transporter;
	if (!url) return null;
	const { token, credsFile } = config.transporterAuth;
	const name = transporterKind(url);
	if (name !== "nats" && (token || credsFile)) {
		const where = name ? `: ${TRANSPORTERS[name].credentials}` : "";
		throw new ConfigError(token ? "TRANSPORTER_TOKEN" : "TRANSPORTER_CREDS_FILE", `applies to a nats:// TRANSPORTER only${where}`);
	}
	if (!name) {
		const variable = tlsVariable(config.tls);
		if (variable) throw new ConfigError(variable, "applies to a nats://, amqps:// or rediss:// TRANSPORTER only");
		// Moleculer resolves a name or a URL string ("TCP", "mqtt://…") to its transporter; its typings list only names.
		return url as BrokerOptions["transporter"];
	}
	return TRANSPORTERS[name].build(url, config);
}
