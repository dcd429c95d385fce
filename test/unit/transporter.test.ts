/**
 * TRANSPORTER picks its transporter by URL scheme, and what the node joins with: credentials decoded,
 * and the variables that cannot apply to that URL refused, naming the variable (a node that ignored a
 * CA file would talk in the clear; one that ignored TRANSPORTER_TOKEN would join without it).
 * The transporters themselves, with real servers: test/integration/cluster.test.ts and
 * test/security/transporter-tls.test.ts.
 */
import { Transporters } from "moleculer";
import { ConfigError, loadConfig } from "../../src/platform/config";
import { redactedUrl, transporterKind, transporterOptions } from "../../src/platform/transporter";

const options = (env: Record<string, string>) => transporterOptions(loadConfig(env)) as { type: string; options: Record<string, unknown> };

function refusal(env: Record<string, string>): ConfigError {
	try {
		transporterOptions(loadConfig(env));
	} catch (err) {
		if (err instanceof ConfigError) return err;
		throw err;
	}
	throw new Error(`accepted: ${JSON.stringify(env)}`);
}

describe("TRANSPORTER by URL scheme", () => {
	test("nats://, amqp(s):// and redis(s):// pick Moleculer's NATS, AMQP and Redis transporters; anything else goes to Moleculer as it is", () => {
		expect(transporterKind("nats://127.0.0.1:4222")).toBe("nats");
		expect(transporterKind("AMQPS://rabbit:5671")).toBe("amqp");
		expect(transporterKind("rediss://cache:6380")).toBe("redis");
		expect(transporterKind("TCP")).toBeUndefined();
		expect(options({ TRANSPORTER: "nats://127.0.0.1:4222" }).type).toBe("NATS");
		expect(options({ TRANSPORTER: "amqp://127.0.0.1:5672" }).type).toBe("AMQP");
		expect(transporterOptions(loadConfig({ TRANSPORTER: "redis://127.0.0.1:6379" }))).toBeInstanceOf(Transporters.Redis);
		expect(transporterOptions(loadConfig({ TRANSPORTER: "TCP" }))).toBe("TCP");
		expect(transporterOptions(loadConfig({}))).toBeNull();
	});

	test("RabbitMQ: a list of brokers (`;` as Moleculer writes it, or `,`), the password left encoded for amqplib, which decodes it; a request per bulkhead slot in flight, not one", () => {
		const amqp = options({ TRANSPORTER: "amqp://mcp:p%40ss%2Fw0rd@rabbit-1:5672/mcp;amqp://mcp:p%40ss%2Fw0rd@rabbit-2:5672/mcp", BULKHEAD_CONCURRENCY: "8", BULKHEAD_MAX_QUEUE: "100" });
		expect(amqp.options.url).toEqual(["amqp://mcp:p%40ss%2Fw0rd@rabbit-1:5672/mcp", "amqp://mcp:p%40ss%2Fw0rd@rabbit-2:5672/mcp"]);
		expect(amqp.options.prefetch).toBe(108);
		// Without it amqplib leaves Nagle on: 40 ms a call round trip on Linux instead of under 1 ms.
		expect(amqp.options.socketOptions).toEqual({ noDelay: true });
		expect(options({ TRANSPORTER: "amqp://a:5672, amqp://b:5672" }).options.url).toEqual(["amqp://a:5672", "amqp://b:5672"]);
	});

	test("Redis: user and password decoded, the database from the path; rediss:// is TLS", () => {
		const redis = (env: Record<string, string>) => (transporterOptions(loadConfig(env)) as unknown as { opts: unknown }).opts;
		expect(redis({ TRANSPORTER: "redis://mcp:p%40ss@cache:6390/3" })).toEqual({ host: "cache", port: 6390, db: 3, username: "mcp", password: "p@ss" });
		expect(redis({ TRANSPORTER: "rediss://cache" })).toEqual({ host: "cache", port: 6379, db: 0, tls: {} });
		expect(refusal({ TRANSPORTER: "redis://cache/zero" }).variable).toBe("TRANSPORTER");
		expect(refusal({ TRANSPORTER: "redis://a:6379,redis://b:6379" }).message).toMatch(/^TRANSPORTER: names one Redis server/);
	});

	test("NATS's TRANSPORTER_TOKEN and TRANSPORTER_CREDS_FILE are refused with another transporter, saying where its credentials go", () => {
		const amqp = refusal({ TRANSPORTER: "amqp://127.0.0.1", TRANSPORTER_TOKEN: "t" });
		expect(amqp.variable).toBe("TRANSPORTER_TOKEN");
		expect(amqp.message).toMatch(/nats:\/\/ TRANSPORTER only: RabbitMQ takes its user and password in the URL \(amqp:\/\/user:password@/);
		const redis = refusal({ TRANSPORTER: "redis://127.0.0.1", TRANSPORTER_CREDS_FILE: "/x.creds" });
		expect(redis.variable).toBe("TRANSPORTER_CREDS_FILE");
		expect(redis.message).toMatch(/Redis takes its user and password in the URL/);
		expect(refusal({ TRANSPORTER: "TCP", TRANSPORTER_TOKEN: "t" }).variable).toBe("TRANSPORTER_TOKEN");
	});

	test("TLS files with a plain amqp:// or redis:// are refused (they would be ignored: no TLS at all), as with a transporter that takes none", () => {
		const plain = refusal({ TRANSPORTER: "amqp://127.0.0.1", TRANSPORTER_TLS_CA_FILE: "/ca.pem" });
		expect(plain.variable).toBe("TRANSPORTER_TLS_CA_FILE");
		expect(plain.message).toBe("TRANSPORTER_TLS_CA_FILE: needs TLS in TRANSPORTER: amqp:// is plain TCP and would ignore it; use amqps://");
		expect(refusal({ TRANSPORTER: "amqps://a;amqp://b", TRANSPORTER_TLS_CA_FILE: "/ca.pem" }).message).toMatch(/amqp:\/\/ is plain TCP/);
		expect(refusal({ TRANSPORTER: "redis://127.0.0.1", TRANSPORTER_TLS_CERT_FILE: "/c.pem", TRANSPORTER_TLS_KEY_FILE: "/k.pem" }).message).toMatch(/^TRANSPORTER_TLS_CERT_FILE: needs TLS in TRANSPORTER: redis:\/\/ .* use rediss:\/\//);
		expect(refusal({ TRANSPORTER: "TCP", TRANSPORTER_TLS_CA_FILE: "/ca.pem" }).message).toMatch(/nats:\/\/, amqps:\/\/ or rediss:\/\/ TRANSPORTER only/);
		expect(refusal({ TRANSPORTER: "rediss://127.0.0.1", TRANSPORTER_TLS_CA_FILE: "/nonexistent/ca.pem" }).message).toMatch(/^TRANSPORTER_TLS_CA_FILE: cannot be read/);
	});

	test("one transporter at a time, and a URL that is not one is refused without its password", () => {
		expect(refusal({ TRANSPORTER: "amqp://a;redis://b" }).message).toMatch(/mixes transporters/);
		const bad = refusal({ TRANSPORTER: "amqp://guest:secret@[bad" });
		expect(bad.variable).toBe("TRANSPORTER");
		expect(bad.message).not.toContain("secret");
		expect(redactedUrl("amqp://guest:secret@rabbit/mcp")).toBe("amqp://…@rabbit/mcp");
	});
});
