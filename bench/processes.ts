/**
 * Processes of the end-to-end benchmarks, started as an operator starts them: a server node through
 * moleculer-runner with the built services (what `npm start` runs), agent nodes forked from
 * dist/bench, and a PostgreSQL database of their own. A process's CPU is read from /proc, so a
 * figure per task counts everything the node did (its GC, its transporter and store clients).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Client } from "pg";

const ROOT = path.join(__dirname, "..", "..");
const CLOCK_TICKS_PER_SEC = 100;

export interface NodeProcess {
	child: ChildProcess;
	url: string;
	/** User + system CPU seconds the process has used so far. */
	cpuSeconds(): number;
	stop(): Promise<void>;
}

export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
	});
}

/** utime + stime of a process (fields 14 and 15 of /proc/<pid>/stat, after the command's parentheses). */
export function cpuSecondsOf(pid: number): number {
	const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
}

function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
	return new Promise(resolve => {
		const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
		child.once("exit", () => {
			clearTimeout(timer);
			resolve();
		});
		child.kill("SIGTERM");
	});
}

async function waitForReady(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`server node exited with ${child.exitCode}`);
		const ready = await fetch(`${url}/ready`).then(r => r.status === 200, () => false);
		if (ready) return;
		await new Promise(r => setTimeout(r, 100));
	}
	throw new Error(`server node not ready within ${timeoutMs} ms`);
}

/**
 * A server node as `npm start` runs it (moleculer-runner, dist/services), on a port of its own;
 * resolves when /ready says 200. With BENCH_PROFILE=dir it writes a V8 CPU profile to dir/<label>
 * when it stops (read it with profile-summary.ts).
 */
export async function startServerNode(env: Record<string, string>, label: string): Promise<NodeProcess> {
	const port = await freePort();
	const profileDir = process.env.BENCH_PROFILE;
	const execArgv = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, label)}`] : [];
	const child = spawn(process.execPath, [...execArgv, path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", "dist/moleculer.config.js"], {
		cwd: ROOT,
		env: { ...process.env, SERVICEDIR: "dist/services", LOCAL_AGENT: "false", LOG_LEVEL: "error", ...env, SERVER_PORT: String(port) },
		stdio: ["ignore", "ignore", "inherit"]
	});
	const url = `http://127.0.0.1:${port}`;
	await waitForReady(url, child);
	return { child, url, cpuSeconds: () => cpuSecondsOf(child.pid!), stop: () => stopChild(child) };
}

export interface BenchDatabase {
	url: string;
	drop(): Promise<void>;
}

/** A database of its own on the machine's PostgreSQL (BENCH_POSTGRES_ADMIN_URL overrides where), dropped afterwards. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
	const adminUrl = process.env.BENCH_POSTGRES_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
	const name = `mcp_bench_${randomBytes(6).toString("hex")}`;
	const admin = new Client({ connectionString: adminUrl });
	await admin.connect();
	await admin.query(`CREATE DATABASE ${name}`);
	await admin.end();
	return {
		url: adminUrl.replace(/\/[^/]*$/, `/${name}`),
		async drop() {
			const client = new Client({ connectionString: adminUrl });
			await client.connect();
			await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
			await client.end();
		}
	};
}
