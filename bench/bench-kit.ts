/**
 * Shared pieces of `npm run bench`: the result shape, percentiles, and a server node built from the
 * compiled services exactly as `npm start` builds it (the bench runs from dist/bench).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { brokerOptions } from "../src/platform/broker-options";
import { loadConfig } from "../src/platform/config";
import { resolveSecrets } from "../src/platform/secrets";

export interface BenchResult {
	name: string;
	lines: string[];
}

export function percentile(sorted: number[], p: number): number {
	if (!sorted.length) return NaN;
	return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function fmt(n: number, digits = 0): string {
	return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
	return {
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "mcp-bench-")),
		JWT_SECRET: "bench-secret",
		API_KEY: "bench-key",
		LOG_LEVEL: "error",
		SERVER_PORT: "0",
		MAX_CONCURRENT_TASKS: "100000",
		MAX_AGENTS: "100000",
		RATE_LIMIT_PER_MINUTE: "100000000",
		...extra
	};
}

export function serviceSchema(name: string): ServiceSchema {
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	return require(path.join(__dirname, "..", "services", `${name}.service`)).default;
}

export async function startNode(env: Record<string, string>, services: string[], extra: Partial<ServiceSchema>[] = []): Promise<ServiceBroker> {
	const broker = new ServiceBroker(brokerOptions(resolveSecrets(loadConfig(env))));
	for (const name of services) broker.createService(serviceSchema(name));
	for (const schema of extra) broker.createService(schema as ServiceSchema);
	await broker.start();
	return broker;
}

/** Runs one scenario as a script (`node dist/bench/<file>.js`): prints its figures, exits 0, or 1 on failure. */
export function runAsScript(scenario: () => Promise<BenchResult>): void {
	scenario().then(
		({ name, lines }) => {
			console.log(`## ${name}\n${lines.join("\n")}`);
			process.exit(0);
		},
		err => {
			console.error(err);
			process.exit(1);
		}
	);
}
