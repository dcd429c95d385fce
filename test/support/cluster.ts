/**
 * Real processes for cluster and fault tests: private nats-server and redis-server instances on free
 * ports (so a test may kill and restart them) and MCP nodes started from dist/ by moleculer-runner.
 */
import { execSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../bench/processes";
import { waitFor } from "./http";

const ROOT = path.resolve(__dirname, "../..");

/** The benchmarks' helper: a port nothing listens on now. */
export { freePort };

function portOpen(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect({ host: "127.0.0.1", port });
		socket.once("connect", () => (socket.destroy(), resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

/** `npm test` builds first; a bare `npx jest` on a fresh or stale checkout builds here. */
export function ensureBuilt(): void {
	const built = path.join(ROOT, "dist/moleculer.config.js");
	const newest = (dir: string): number =>
		fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true }).reduce((max, entry) => {
			if (!entry.isFile() || !entry.name.endsWith(".ts")) return max;
			return Math.max(max, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
		}, 0);
	const stale = !fs.existsSync(built) || ["src", "services", "mixins", "agents"].some(dir => newest(dir) > fs.statSync(built).mtimeMs);
	if (stale) execSync("npm run build --silent", { cwd: ROOT, stdio: "inherit" });
}

export interface ManagedProcess {
	readonly name: string;
	process: ChildProcess;
	/** The last chunks of stdout and stderr together, for diagnostics. */
	output: string[];
	/** All of stdout. */
	stdout: string[];
	kill(signal?: NodeJS.Signals): Promise<void>;
}

function manage(name: string, command: string, args: string[], env: Record<string, string> = {}, stdin: "ignore" | "pipe" = "ignore"): ManagedProcess {
	const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: [stdin, "pipe", "pipe"] });
	const managed: ManagedProcess = {
		name,
		process: child,
		output: [],
		stdout: [],
		kill: (signal = "SIGKILL") =>
			new Promise(resolve => {
				if (child.exitCode !== null || child.signalCode !== null) return resolve();
				child.once("exit", () => resolve());
				child.kill(signal);
			})
	};
	// Keep the pipes drained (a full pipe would block the child) and the tail for diagnostics.
	const keep = (chunk: Buffer) => {
		managed.output.push(chunk.toString());
		if (managed.output.length > 200) managed.output.shift();
	};
	child.stdout!.on("data", keep);
	child.stdout!.on("data", (chunk: Buffer) => managed.stdout.push(chunk.toString()));
	child.stderr!.on("data", keep);
	return managed;
}

/** How a private nats-server lets clients in: a token, a user and password, or a config file's own rules (nkeys, an operator's JWTs). */
export interface NatsAuth {
	token?: string;
	user?: string;
	password?: string;
	/** nats-server configuration text (without `listen`: the address and port are given on the command line). */
	config?: string;
}

/** `options`: how clients get in, or more command-line options (e.g. `--tls --tlscert … --tlskey …`: the URL stays nats://, the client upgrades). */
export async function startNatsServer(port?: number, options: NatsAuth | string[] = {}): Promise<ManagedProcess & { port: number; url: string }> {
	const p = port ?? (await freePort());
	const args = ["-a", "127.0.0.1", "-p", String(p)];
	const auth: NatsAuth = Array.isArray(options) ? {} : options;
	if (Array.isArray(options)) args.push(...options);
	if (auth.token) args.push("--auth", auth.token);
	if (auth.user) args.push("--user", auth.user, "--pass", auth.password ?? "");
	if (auth.config) {
		const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nats-conf-")), "nats-server.conf");
		fs.writeFileSync(file, auth.config, { mode: 0o600 });
		args.unshift("-c", file);
	}
	const nats = manage(`nats:${p}`, "/usr/sbin/nats-server", args);
	await waitFor(() => portOpen(p), 10_000);
	return Object.assign(nats, { port: p, url: `nats://127.0.0.1:${p}` });
}

/** With `tls`: TLS only (no plain port), clients need no certificate; the URL is rediss://. */
export async function startRedisServer(port?: number, tls?: { certFile: string; keyFile: string; caFile: string }): Promise<ManagedProcess & { port: number; url: string }> {
	const p = port ?? (await freePort());
	const listen = tls
		? ["--port", "0", "--tls-port", String(p), "--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile, "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no"]
		: ["--port", String(p)];
	const redis = manage(`redis:${p}`, "redis-server", [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
	await waitFor(() => portOpen(p), 10_000);
	return Object.assign(redis, { port: p, url: `${tls ? "rediss" : "redis"}://127.0.0.1:${p}` });
}

/** An agent node as `npm run agent` runs it (dist/agents/agent-node.js), or another agent script (e.g. test/support/slow-agent-node.js). */
export function startAgentNode(name: string, env: Record<string, string>, script = "dist/agents/agent-node.js"): ManagedProcess {
	return manage(name, process.execPath, [path.join(ROOT, script)], { NODE_ID: name, LOG_LEVEL: "warn", ...env });
}

/** The REPL as `npm run repl` runs it (dist/scripts/repl.js), its input the lines given and then the end (it exits once they have run). */
export function startRepl(name: string, env: Record<string, string>, lines: string[]): ManagedProcess & { exited: Promise<number | null> } {
	const repl = manage(name, process.execPath, [path.join(ROOT, "dist/scripts/repl.js")], { LOG_LEVEL: "warn", ...env }, "pipe");
	repl.process.stdin!.end(lines.map(line => `${line}\n`).join(""));
	const exited = new Promise<number | null>(resolve => {
		if (repl.process.exitCode !== null) resolve(repl.process.exitCode);
		else repl.process.once("exit", code => resolve(code));
	});
	return Object.assign(repl, { exited });
}

/** An MCP node as `npm start` runs it (moleculer-runner over dist/services), with `SERVICES` picking its role. */
export function startNode(name: string, env: Record<string, string>): ManagedProcess {
	return manage(name, process.execPath, [path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", "dist/moleculer.config.js"], {
		SERVICEDIR: "dist/services",
		NODE_ID: name,
		LOG_LEVEL: "warn",
		LOCAL_AGENT: "false",
		...env
	});
}

/**
 * A TCP proxy on a free port in front of a server, to take it away from the clients that go
 * through it without touching the server (the machine's RabbitMQ, say, which other tests share):
 * `stall()` stops moving bytes both ways and keeps every connection open (a server or network that
 * hangs: no client notices unless it makes a round trip), `cut()` drops every connection and refuses
 * new ones (a server that is down), `restore()` undoes either.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<{ port: number; stall(): void; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
	const port = await freePort();
	const pairs = new Set<[net.Socket, net.Socket]>();
	let stalled = false;
	let server: net.Server | undefined;
	const flow = ([a, b]: [net.Socket, net.Socket]) => (a.pipe(b), b.pipe(a));
	const hold = ([a, b]: [net.Socket, net.Socket]) => (a.unpipe(b), b.unpipe(a), a.pause(), b.pause());
	const listen = () =>
		new Promise<void>((resolve, reject) => {
			server = net.createServer(client => {
				const upstream = net.connect(target);
				const pair: [net.Socket, net.Socket] = [client, upstream];
				pairs.add(pair);
				const drop = () => (pairs.delete(pair), client.destroy(), upstream.destroy());
				client.on("error", drop).on("close", drop);
				upstream.on("error", drop).on("close", drop);
				if (!stalled) flow(pair);
			});
			server.once("error", reject);
			server.listen(port, "127.0.0.1", () => resolve());
		});
	const stopListening = () => new Promise<void>(resolve => (server ? server.close(() => resolve()) : resolve()));
	await listen();
	return {
		port,
		stall() {
			stalled = true;
			for (const pair of pairs) hold(pair);
		},
		async cut() {
			const closed = stopListening();
			for (const [a, b] of pairs) (a.destroy(), b.destroy());
			pairs.clear();
			await closed;
			server = undefined;
		},
		async restore() {
			if (stalled) for (const pair of pairs) flow(pair);
			stalled = false;
			if (!server) await listen();
		},
		async close() {
			const closed = stopListening();
			for (const [a, b] of pairs) (a.destroy(), b.destroy());
			await closed;
		}
	};
}
