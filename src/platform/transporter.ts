/**
 * The Moleculer transporter a node joins with: TRANSPORTER's URL, and for NATS the credentials
 * that keep other processes off the bus (user:password in the URL, TRANSPORTER_TOKEN, or an nkey
 * or JWT creds file in TRANSPORTER_CREDS_FILE) and TLS (TRANSPORTER_TLS_CA_FILE to trust the
 * server, TRANSPORTER_TLS_CERT_FILE and _KEY_FILE for mutual TLS). Anything else Moleculer
 * resolves from the URL.
 */
import path from "node:path";
import type { BrokerOptions } from "moleculer";
import { credsAuthenticator } from "nats";
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
	const options: Record<string, unknown> = { url };
	if (token) options.token = token;
	if (credsFile) options.authenticator = credsAuthenticator(readConfigFile("TRANSPORTER_CREDS_FILE", credsFile));
	const tls = natsTls(config.tls);
	if (tls) options.tls = tls;
	return { type: "NATS", options } as BrokerOptions["transporter"];
}
