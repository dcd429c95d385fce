/** Brokers for tests, configured exactly like production nodes but from an explicit environment. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { brokerOptions } from "../../src/platform/broker-options";
import { loadConfig, type AppConfig } from "../../src/platform/config";
import { resolveSecrets } from "../../src/platform/secrets";

export function tempDir(prefix = "mcp-test-"): string {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const TEST_SECRETS = { JWT_SECRET: "test-jwt-secret-0123456789abcdef", API_KEY: "test-api-key" };

export function testConfig(env: Record<string, string | undefined> = {}): AppConfig {
	return resolveSecrets(loadConfig({
		DATA_DIR: tempDir(),
		LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
		SERVER_PORT: "0",
		// A test's agents are its own: no reference agent in the server's process unless a test asks for one.
		LOCAL_AGENT: "false",
		...TEST_SECRETS,
		...env
	}));
}

export function createTestBroker(config: AppConfig): ServiceBroker {
	return new ServiceBroker(brokerOptions(config));
}
