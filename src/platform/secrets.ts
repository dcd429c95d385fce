/**
 * A node's secrets, once: given in the environment, or in development generated the first time
 * and kept in DATA_DIR/.secrets.json (mode 0600), so tokens survive a restart. Production never
 * generates: `loadConfig` refuses to start without them.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AppConfig, EnvConfig } from "./config";

interface StoredSecrets {
	jwt_secret: string;
	api_key: string;
}

export function resolveSecrets(config: EnvConfig): AppConfig {
	const { jwtSecret, apiKey } = config.secrets;
	if (jwtSecret && apiKey) return { ...config, secrets: { jwtSecret, apiKey }, secretsGenerated: false };
	const file = path.join(config.dataDir, ".secrets.json");
	let stored: StoredSecrets;
	try {
		stored = JSON.parse(fs.readFileSync(file, "utf8")) as StoredSecrets;
	} catch {
		stored = { jwt_secret: randomBytes(32).toString("hex"), api_key: randomBytes(24).toString("hex") };
		fs.mkdirSync(config.dataDir, { recursive: true });
		fs.writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
	}
	return { ...config, secrets: { jwtSecret: jwtSecret ?? stored.jwt_secret, apiKey: apiKey ?? stored.api_key }, secretsGenerated: true };
}
