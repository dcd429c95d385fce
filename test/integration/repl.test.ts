/**
 * `npm run repl` and `npm run token` as a person (or a script) uses them: the built entry points
 * in dist/scripts run as child processes with a temporary DATA_DIR and no TRANSPORTER, so the REPL
 * runs every service itself. `npm test` builds before jest; run `npm run build` first otherwise.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { agentIdFor } from "../../services/agents.service";
import { verifyToken } from "../../src/platform/tokens";
import type { Agent } from "../../src/types";
import { tempDir, TEST_SECRETS } from "../support/broker";
import { startServer, type TestServer } from "../support/server";
import { NATS, testWith } from "../support/services";

const ROOT = path.resolve(__dirname, "../..");
const REPL_JS = path.join(ROOT, "dist/scripts/repl.js");
const TOKEN_JS = path.join(ROOT, "dist/scripts/token.js");
const PROMPT = "mcp $ ";
const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/;
/** The REPL's `token` answer: the token, then its summary line (other JWTs appear in the output too). */
const MINTED = new RegExp(`(${JWT.source})\\n\\(sub `);

const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

/** Only what the test means: no TRANSPORTER, DATABASE_URL, MONGODB_URI or REDIS_URL leaks in from the shell. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
	const home = tempDir("mcp-repl-home-");
	return { PATH: process.env.PATH, HOME: home, DATA_DIR: tempDir("mcp-repl-data-"), SERVER_PORT: "0", LOG_LEVEL: "warn", LOCAL_AGENT: "false", ...extra };
}

beforeAll(() => {
	for (const file of [REPL_JS, TOKEN_JS])
		if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first (npm test does)`);
});

class Repl {
	readonly child: ChildProcessWithoutNullStreams;
	out = "";
	err = "";
	readonly exited: Promise<number | null>;

	constructor(env: NodeJS.ProcessEnv) {
		this.child = spawn(process.execPath, [REPL_JS], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
		this.child.stdout.setEncoding("utf8").on("data", (d: string) => (this.out += stripAnsi(d)));
		this.child.stderr.setEncoding("utf8").on("data", (d: string) => (this.err += stripAnsi(d)));
		this.exited = new Promise(resolve => this.child.once("exit", code => resolve(code)));
	}

	/** Resolves with the output after `from` once it ends with a fresh prompt. */
	async prompt(from = 0, timeoutMs = 20_000): Promise<string> {
		const deadline = Date.now() + timeoutMs;
		while (!this.out.slice(from).endsWith(PROMPT)) {
			if (this.child.exitCode !== null) throw new Error(`REPL exited (${this.child.exitCode}):\n${this.out}\n${this.err}`);
			if (Date.now() > deadline) throw new Error(`no prompt within ${timeoutMs} ms; output:\n${this.out}\nstderr:\n${this.err}`);
			await new Promise(r => setTimeout(r, 20));
		}
		return this.out.slice(from, -PROMPT.length);
	}

	/** Types one line and returns what it printed. */
	async run(line: string): Promise<string> {
		const from = this.out.length;
		this.child.stdin.write(`${line}\n`);
		return this.prompt(from);
	}

	kill() {
		if (this.child.exitCode === null) this.child.kill("SIGKILL");
	}
}

const AGENT = { name: "repl-test-agent", type: "worker", capabilities: ["analysis"] };
const AGENT_ID = agentIdFor(AGENT.name);
const REGISTER = `call agents.register ${JSON.stringify(AGENT)}`;

describe("npm run repl (no TRANSPORTER: every service in the REPL's process)", () => {
	let repl: Repl | undefined;
	afterEach(() => repl?.kill());

	test("operator commands typed one at a time", async () => {
		repl = new Repl(childEnv(TEST_SECRETS));
		const banner = await repl.prompt();
		expect(banner).toMatch(/no TRANSPORTER, running .*agents/);

		expect(await repl.run("agents")).toContain("No agents.");

		const registered = await repl.run(REGISTER);
		expect(registered).toContain(">> Response:");
		expect(registered).toContain(AGENT_ID);

		const listed = (await repl.run("agents")).split("\n");
		expect(listed.find(l => l.startsWith("ID"))?.split(/\s+/)).toEqual(["ID", "NAME", "TYPE", "STATUS", "LOAD", "RUNNING", "NODE"]);
		expect(listed.find(l => l.startsWith(AGENT_ID))?.split(/\s+/)).toEqual([AGENT_ID, AGENT.name, "worker", "active", "0.00", "0", "-"]);

		const minted = await repl.run("token operator alice");
		const token = minted.match(MINTED)?.[1];
		expect(token).toBeDefined();
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, token!)).toEqual({ sub: "alice", roles: ["operator"] });
		expect(await repl.run("token agent")).toContain("Usage: an agent token needs an agent id");
		const agentToken = (await repl.run(`token agent --agent-id ${AGENT_ID}`)).match(JWT)?.[0];
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, agentToken!)).toMatchObject({ roles: ["agent"], agent_id: AGENT_ID });

		expect(await repl.run(`drain ${AGENT_ID}`)).toMatch(new RegExp(`${AGENT_ID}\\s+${AGENT.name}\\s+worker\\s+draining`));
		expect(await repl.run("agents draining")).toContain(AGENT_ID);
		expect(await repl.run("agents active")).toContain("No agents.");
		expect(await repl.run("drain agent-does-not-exist")).toContain("agents.drain failed (404 NOT_FOUND): Agent 'agent-does-not-exist' not found");

		// Task and pipeline commands answer whether or not those services are in this build.
		expect(await repl.run("tasks")).toMatch(/No tasks\.|TASK_ID|not available/);
		expect(await repl.run("runs")).toMatch(/No runs\.|RUN_ID|not available/);
		expect(await repl.run("cancel run-does-not-exist")).toMatch(/No run 'run-does-not-exist'|not available/);

		repl.child.stdin.end();
		expect(await repl.exited).toBe(0);
	});

	test("piped input: commands run in order, each to its end, and the REPL exits after the last", async () => {
		repl = new Repl(childEnv(TEST_SECRETS));
		repl.child.stdin.end(["agents", REGISTER, `drain ${AGENT_ID}`, "token viewer bob", "agents", ""].join("\n"));
		expect(await repl.exited).toBe(0);

		const out = repl.out;
		const steps = [out.indexOf("No agents."), out.indexOf(">> Response:"), out.search(/\s+draining/), out.search(MINTED)];
		expect(steps.every(i => i >= 0)).toBe(true);
		expect([...steps].sort((a, b) => a - b)).toEqual(steps);
		const lastTable = out.slice(out.lastIndexOf("ID  "));
		expect(lastTable).toMatch(new RegExp(`${AGENT_ID}\\s+${AGENT.name}\\s+worker\\s+draining`));
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, out.match(MINTED)![1])).toEqual({ sub: "bob", roles: ["viewer"] });
	});

	test("without JWT_SECRET in development, tokens use DATA_DIR/.secrets.json like the server", async () => {
		const env = childEnv();
		repl = new Repl(env);
		repl.child.stdin.end("token admin root\n");
		expect(await repl.exited).toBe(0);
		expect(repl.out).toContain(".secrets.json");
		const secrets = JSON.parse(fs.readFileSync(path.join(env.DATA_DIR!, ".secrets.json"), "utf8")) as { jwt_secret: string };
		expect(verifyToken(secrets.jwt_secret, repl.out.match(MINTED)![1])).toEqual({ sub: "root", roles: ["admin"] });
	});
});

describe("npm run repl with TRANSPORTER: a node of the cluster", () => {
	let server: TestServer | undefined;
	let repl: Repl | undefined;
	afterEach(async () => {
		repl?.kill();
		await server?.stop();
	});

	testWith(NATS)("lists and drains the agents of a server node over NATS", async () => {
		const cluster = { TRANSPORTER: `nats://${NATS.host}:${NATS.port}`, NAMESPACE: `repl-${process.pid}-${Date.now()}` };
		server = await startServer(cluster);
		await server.broker.call("agents.register", AGENT);

		repl = new Repl(childEnv({ ...TEST_SECRETS, ...cluster }));
		repl.child.stdin.end(["agents", `drain ${AGENT_ID}`, "token operator carol", ""].join("\n"));
		expect(await repl.exited).toBe(0);
		expect(repl.out).toMatch(new RegExp(`node repl-\\S+ joined ${cluster.TRANSPORTER}`));
		expect(repl.out).toMatch(new RegExp(`${AGENT_ID}\\s+${AGENT.name}\\s+worker\\s+active`));
		expect(repl.out).toMatch(new RegExp(`${AGENT_ID}\\s+${AGENT.name}\\s+worker\\s+draining`));
		expect(((await server.broker.call("agents.get", { id: AGENT_ID })) as Agent).status).toBe("draining");
		expect(verifyToken(server.config.secrets.jwtSecret, repl.out.match(MINTED)![1]).sub).toBe("carol");
	});
});

describe("npm run token", () => {
	const token = (args: string[], env: NodeJS.ProcessEnv = childEnv(TEST_SECRETS)) =>
		spawnSync(process.execPath, [TOKEN_JS, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 20_000 });

	test("prints only a JWT signed with JWT_SECRET", () => {
		const result = token(["--roles", "operator", "--sub", "alice", "--expires-in", "600"]);
		expect(result.status).toBe(0);
		expect(result.stdout).toMatch(new RegExp(`^${JWT.source}\\n$`));
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, result.stdout.trim())).toEqual({ sub: "alice", roles: ["operator"] });
		const claims = JSON.parse(Buffer.from(result.stdout.split(".")[1], "base64url").toString()) as { exp: number; iat: number };
		expect(claims.exp - claims.iat).toBe(600);
	});

	test("agent tokens carry the agent id", () => {
		const result = token(["--roles", "agent", "--agent-id", "agent-42"]);
		expect(result.status).toBe(0);
		expect(verifyToken(TEST_SECRETS.JWT_SECRET, result.stdout.trim())).toEqual({ sub: "agent:agent-42", roles: ["agent"], agent_id: "agent-42" });
	});

	test("in development without JWT_SECRET it signs with DATA_DIR/.secrets.json, and says so on stderr", () => {
		const env = childEnv();
		const result = token(["--roles", "viewer", "--sub", "dev"], env);
		expect(result.status).toBe(0);
		expect(result.stderr).toContain(".secrets.json");
		const secrets = JSON.parse(fs.readFileSync(path.join(env.DATA_DIR!, ".secrets.json"), "utf8")) as { jwt_secret: string };
		expect(verifyToken(secrets.jwt_secret, result.stdout.trim()).sub).toBe("dev");
	});

	test.each([
		[["--roles", "root", "--sub", "x"], /unknown role 'root'/],
		[["--roles", "agent"], /agent id/],
		[["--sub", "x"], /roles are required/],
		[["--roles", "viewer"], /subject is required/],
		[["--roles", "viewer", "--sub", "x", "--expires-in", "never"], /positive/],
		[["--role", "viewer"], /Unknown option '--role'/]
	])("%j: message on stderr, nothing on stdout, exit code 2", (args, message) => {
		const result = token(args);
		expect(result.status).toBe(2);
		expect(result.stdout).toBe("");
		expect(result.stderr).toMatch(message);
	});

	test("a configuration error exits with 2 too", () => {
		const result = token(["--roles", "viewer", "--sub", "x"], { ...childEnv(), NODE_ENV: "production" });
		expect(result.status).toBe(2);
		expect(result.stderr).toContain("JWT_SECRET: must be set when NODE_ENV=production");
	});
});
