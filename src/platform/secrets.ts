/**
 * Development convenience: without JWT_SECRET / API_KEY the server generates them once and keeps
 * them in DATA_DIR/.secrets.json (mode 0600), so tokens survive a restart. Production never gets
 * here: `loadConfig` refuses to start without them.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AppConfig } from "./config";

interface StoredSecrets {
	jwt_secret: string;
	api_key: string;
}

export function resolveSecrets(config: AppConfig): AppConfig {
	if (config.jwtSecret && config.apiKey) return config;
	const file = path.join(config.dataDir, ".secrets.json");
	let stored: StoredSecrets;
	try {
		stored = JSON.parse(fs.readFileSync(file, "utf8")) as StoredSecrets;
	} catch {
		stored = { jwt_secret: randomBytes(32).toString("hex"), api_key: randomBytes(24).toString("hex") };
		fs.mkdirSync(config.dataDir, { recursive: true });
		fs.writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
	}
	return {
		...config,
		jwtSecret: config.jwtSecret ?? stored.jwt_secret,
		apiKey: config.apiKey ?? stored.api_key,
		secretsGenerated: true
	};
}
