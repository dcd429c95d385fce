/**
 * The Moleculer transporter a node joins with: TRANSPORTER's URL, and for NATS the credentials
 * that keep other processes off the bus (user:password in the URL, TRANSPORTER_TOKEN, or an nkey
 * or JWT creds file in TRANSPORTER_CREDS_FILE) and TLS (TRANSPORTER_TLS_CA_FILE to trust the
 * server, TRANSPORTER_TLS_CERT_FILE and _KEY_FILE for mutual TLS). Anything else Moleculer
 * resolves from the URL.
 */
import fs from "node:fs";
import path from "node:path";
import type { BrokerOptions } from "moleculer";
import { credsAuthenticator, nkeyAuthenticator } from "nats";
import type { EnvConfig, TlsSettings } from "./config";
import { ConfigError } from "./config";
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

export function transporterOptions(config: EnvConfig): BrokerOptions["transporter"] {
	const url = config.transporter;
	if (!url) return null;
	const { token, credsFile } = config.transporterAuth;
	if (!/^nats:\/\//i.test(url)) {
		if (token || credsFile) throw new ConfigError(token ? "TRANSPORTER_TOKEN" : "TRANSPORTER_CREDS_FILE", "applies to a nats:// TRANSPORTER only");
		if (config.tls.transporterCaFile || config.tls.transporterCertFile)
			throw new ConfigError(
				config.tls.transporterCaFile ? "TRANSPORTER_TLS_CA_FILE" : "TRANSPORTER_TLS_CERT_FILE",
				"applies to a nats:// TRANSPORTER only: Moleculer's other transporters take TLS from their own URL (amqps://, rediss://), trusting a private CA through NODE_EXTRA_CA_CERTS"
			);
		// Moleculer resolves a URL string ("amqp://…", "TCP") to its transporter; its typings list only names.
		return url as BrokerOptions["transporter"];
	}
	// `servers`, not `url`: Moleculer reads credentials out of `url` itself, undecoded (see `natsServers`).
	const options: Record<string, unknown> = natsServers(url);
	if (token) options.token = token;
	if (credsFile) options.authenticator = credsFileAuthenticator(credsFile);
	const tls = natsTls(config.tls);
	if (tls) options.tls = tls;
	return { type: "NATS", options } as BrokerOptions["transporter"];
}
