/**
 * The Moleculer transporter a node joins with: TRANSPORTER's URL, and for NATS the credentials
 * that keep other processes off the bus (user:password in the URL, TRANSPORTER_TOKEN, or an nkey
 * or JWT creds file in TRANSPORTER_CREDS_FILE). Anything else Moleculer resolves from the URL.
 */
import fs from "node:fs";
import type { BrokerOptions } from "moleculer";
import { credsAuthenticator } from "nats";
import type { EnvConfig } from "./config";
import { ConfigError } from "./config";

export function transporterOptions(config: EnvConfig): BrokerOptions["transporter"] {
	const url = config.transporter;
	if (!url) return null;
	const { token, credsFile } = config.transporterAuth;
	if (!/^nats:\/\//i.test(url)) {
		if (token || credsFile) throw new ConfigError(token ? "TRANSPORTER_TOKEN" : "TRANSPORTER_CREDS_FILE", "applies to a nats:// TRANSPORTER only");
		// Moleculer resolves a URL string ("amqp://…", "TCP") to its transporter; its typings list only names.
		return url as BrokerOptions["transporter"];
	}
	const options: Record<string, unknown> = { url };
	if (token) options.token = token;
	if (credsFile) {
		let creds: string;
		try {
			creds = fs.readFileSync(credsFile, "utf8");
		} catch (err) {
			throw new ConfigError("TRANSPORTER_CREDS_FILE", `cannot be read: ${(err as Error).message}`);
		}
		options.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
	}
	return { type: "NATS", options } as BrokerOptions["transporter"];
}
