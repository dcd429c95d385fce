/**
 * A real server for integration tests: a broker configured like production, every service in
 * `services/` (or a chosen subset), and the gateway listening on a random loopback port.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import type { AppConfig } from "../../src/platform/config";
import { localGatewayUrl } from "../../src/gateway/local-gateway";
import { mintToken } from "../../src/platform/tokens";
import type { Role } from "../../src/types";
import { createTestBroker, testConfig } from "./broker";

const SERVICES_DIR = path.resolve(__dirname, "../../services");

export function allServiceNames(): string[] {
	return fs.readdirSync(SERVICES_DIR).filter(f => f.endsWith(".service.ts")).map(f => f.replace(/\.service\.ts$/, ""));
}

export function loadServiceSchema(name: string): ServiceSchema {
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	return require(path.join(SERVICES_DIR, `${name}.service`)).default;
}

export interface TestServer {
	broker: ServiceBroker;
	config: AppConfig;
	url: string;
	token(roles: Role[], sub?: string, extra?: { agent_id?: string; expiresInSec?: number }): string;
	stop(): Promise<void>;
}

export async function startServer(env: Record<string, string | undefined> = {}, services = allServiceNames()): Promise<TestServer> {
	const config = testConfig(env);
	const broker = createTestBroker(config);
	for (const name of services) broker.createService(loadServiceSchema(name));
	await broker.start();
	return {
		broker,
		config,
		url: localGatewayUrl(broker, config),
		token: (roles, sub = `test-${roles.join("-")}`, extra = {}) =>
			mintToken(config.secrets.jwtSecret, { sub, roles, expiresInSec: extra.expiresInSec ?? 3600, agent_id: extra.agent_id }, config.jwt),
		stop: () => broker.stop()
	};
}
