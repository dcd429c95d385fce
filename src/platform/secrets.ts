/**
 * A node's secrets, once: given in the environment, or in development generated the first time
 * and kept in DATA_DIR/.secrets.json (DATA_DIR 0700, the file 0600), so tokens survive a restart.
 * Production never generates: `loadConfig` refuses to start without JWT_SECRET and API_KEY, and a
 * run that names a webhook is refused without WEBHOOK_SECRET.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AppConfig, EnvConfig, Secrets } from "./config";

interface StoredSecrets {
	jwt_secret: string;
	api_key: string;
	webhook_secret?: string;
}

/** DATA_DIR and the files in it (the secrets, the embedded store) are this user's only. */
export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/** DATA_DIR for this node's files: created private to this user. */
export function ensureDataDir(dataDir: string): void {
	fs.mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
}

function developmentSecrets(dataDir: string): StoredSecrets {
	const file = path.join(dataDir, ".secrets.json");
	let stored: StoredSecrets | undefined;
	try {
		stored = JSON.parse(fs.readFileSync(file, "utf8")) as StoredSecrets;
	} catch {
		stored = undefined;
	}
	if (stored?.jwt_secret && stored.api_key && stored.webhook_secret) return stored;
	const complete: StoredSecrets = {
		jwt_secret: stored?.jwt_secret ?? randomBytes(32).toString("hex"),
		api_key: stored?.api_key ?? randomBytes(24).toString("hex"),
		webhook_secret: stored?.webhook_secret ?? randomBytes(32).toString("hex")
	};
	ensureDataDir(dataDir);
	fs.writeFileSync(file, JSON.stringify(complete), { mode: DATA_FILE_MODE });
	// `mode` applies to a new file only: one written before with looser bits is completed here.
	fs.chmodSync(file, DATA_FILE_MODE);
	return complete;
}

/**
 * An agent node's only secret: API_KEY, or in development the generated key from DATA_DIR (when the
 * agent runs beside a development server); never JWT_SECRET.
 */
export function resolveAgentSecrets(config: EnvConfig): EnvConfig {
	if (config.secrets.apiKey || config.production) return config;
	try {
		const stored = JSON.parse(fs.readFileSync(path.join(config.dataDir, ".secrets.json"), "utf8")) as Partial<StoredSecrets>;
		return stored.api_key ? { ...config, secrets: { apiKey: stored.api_key } } : config;
	} catch {
		return config;
	}
}

export function resolveSecrets(config: EnvConfig): AppConfig {
	const given = config.secrets;
	if (given.jwtSecret && given.apiKey && (given.webhookSecret || config.production))
		return { ...config, secrets: { ...given, jwtSecret: given.jwtSecret, apiKey: given.apiKey }, secretsGenerated: false };
	const stored = developmentSecrets(config.dataDir);
	const secrets: Secrets = {
		...given,
		jwtSecret: given.jwtSecret ?? stored.jwt_secret,
		apiKey: given.apiKey ?? stored.api_key,
		webhookSecret: given.webhookSecret ?? stored.webhook_secret
	};
	return { ...config, secrets, secretsGenerated: !given.jwtSecret || !given.apiKey };
}
