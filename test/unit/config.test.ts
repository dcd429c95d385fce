import { ConfigError, loadConfig } from "../../src/platform/config";

describe("loadConfig", () => {
	test("defaults: embedded store, port 8080, no transporter, the contract's limits", () => {
		const c = loadConfig({});
		expect(c).toMatchObject({
			storage: "nedb", serverPort: 8080, transporter: undefined, rateLimitPerMinute: 600,
			heartbeatTimeoutMs: 30000, maxAgents: 100, maxConcurrentTasks: 50, taskTimeoutSec: 3600, logLevel: "info", production: false
		});
		expect(c.dataDir).toMatch(/data$/);
	});

	test("store choice: MONGODB_URI wins over DATABASE_URL", () => {
		expect(loadConfig({ DATABASE_URL: "postgres://x/db" }).storage).toBe("postgres");
		expect(loadConfig({ DATABASE_URL: "postgres://x/db", MONGODB_URI: "mongodb://m/db" }).storage).toBe("mongo");
		expect(() => loadConfig({ DATABASE_URL: "mysql://x" })).toThrow(ConfigError);
	});

	test("spec-style LOG_LEVEL values are understood; nonsense is refused", () => {
		expect(loadConfig({ LOG_LEVEL: "INFO" }).logLevel).toBe("info");
		expect(loadConfig({ LOG_LEVEL: "WARNING" }).logLevel).toBe("warn");
		expect(loadConfig({ LOG_LEVEL: "DEBUG" }).logLevel).toBe("debug");
		expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
	});

	test("numbers and flags are validated with the variable named", () => {
		expect(() => loadConfig({ MAX_AGENTS: "lots" })).toThrow(/MAX_AGENTS/);
		expect(() => loadConfig({ SERVER_PORT: "-1" })).toThrow(/SERVER_PORT/);
		expect(() => loadConfig({ METRICS_ENABLED: "maybe" })).toThrow(/METRICS_ENABLED/);
		expect(loadConfig({ METRICS_ENABLED: "false" }).metricsEnabled).toBe(false);
		expect(loadConfig({ TRANSPORTER: "nats://127.0.0.1:4222" }).transporter).toBe("nats://127.0.0.1:4222");
		expect(loadConfig({ TRANSPORTER: "  " }).transporter).toBeUndefined();
	});

	test("production refuses to run without secrets", () => {
		expect(() => loadConfig({ NODE_ENV: "production", API_KEY: "k" })).toThrow(/JWT_SECRET/);
		expect(loadConfig({ NODE_ENV: "production", API_KEY: "k", JWT_SECRET: "s" }).production).toBe(true);
	});

	test("CORS origins: * or a list", () => {
		expect(loadConfig({}).corsOrigins).toBe("*");
		expect(loadConfig({ CORS_ORIGINS: "https://a, https://b" }).corsOrigins).toEqual(["https://a", "https://b"]);
	});
});
