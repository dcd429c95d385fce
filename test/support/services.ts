/**
 * Real backing services for tests. Outside CI a missing service skips the tests that need it;
 * with CI=true it fails them: CI must run everything but MongoDB (PostgreSQL, NATS, Redis and RabbitMQ included).
 *
 * Whether tests run is decided when they are declared, so that jest reports skipped tests as
 * skipped (a test body that returns early is counted as passed). Jest declares tests
 * synchronously, so the TCP probe runs in a short-lived child process.
 */
import { execFileSync, spawnSync } from "node:child_process";

export const inCI = process.env.CI === "true";

/** A service reached over TCP, required in CI. */
export interface Service {
	name: string;
	host: string;
	port: number;
}

export const POSTGRES: Service = { name: "PostgreSQL", host: "127.0.0.1", port: 5432 };
export const NATS: Service = { name: "NATS", host: "127.0.0.1", port: 4222 };
export const REDIS: Service = { name: "Redis", host: "127.0.0.1", port: 6379 };
/** The machine's RabbitMQ, user guest/guest (a transporter: tests keep apart by NAMESPACE, which prefixes every queue and exchange). */
export const RABBITMQ: Service = { name: "RabbitMQ", host: "127.0.0.1", port: 5672 };
/** Optional everywhere, CI included: its tests run only where MONGODB_URI names a server. */
export const MONGODB = { name: "MongoDB", env: "MONGODB_URI" } as const;

/** A program a test runs, installed on every machine of this project's kind: required in CI. */
export interface Program {
	name: string;
	command: string;
	/** Arguments that make it print its version and exit 0. */
	versionArgs: string[];
}

export const OPENSSL: Program = { name: "openssl", command: "openssl", versionArgs: ["version"] };
export const NATS_SERVER: Program = { name: "nats-server", command: "/usr/sbin/nats-server", versionArgs: ["--version"] };
export const REDIS_SERVER: Program = { name: "redis-server", command: "redis-server", versionArgs: ["--version"] };

export type Requirement = Service | Program | typeof MONGODB;

const PROBE = `
const socket = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
socket.setTimeout(Number(process.argv[3]), () => process.exit(1));
socket.once("connect", () => process.exit(0));
socket.once("error", () => process.exit(1));
`;

const probed = new Map<string, boolean>();

/** Does `host:port` accept a TCP connection? Synchronous; asked once per file and address. */
export function reachableSync(host: string, port: number, timeoutMs = 1000): boolean {
	const key = `${host}:${port}`;
	let ok = probed.get(key);
	if (ok === undefined) {
		try {
			execFileSync(process.execPath, ["-e", PROBE, host, String(port), String(timeoutMs)], { stdio: "ignore", timeout: timeoutMs + 10_000 });
			ok = true;
		} catch {
			ok = false;
		}
		probed.set(key, ok);
	}
	return ok;
}

/**
 * True when every requirement is met. A missing TCP service or program throws in CI (the suite fails loudly)
 * and warns outside it; MongoDB without MONGODB_URI is simply not there, in CI too.
 */
export function available(...requirements: Requirement[]): boolean {
	for (const r of requirements) {
		if ("env" in r) {
			if (!process.env[r.env]) return false;
			continue;
		}
		if ("command" in r) {
			if (spawnSync(r.command, r.versionArgs, { stdio: "ignore", timeout: 10_000 }).status === 0) continue;
			if (inCI) throw new Error(`${r.name} (${r.command}) is required in CI but does not run`);
			console.warn(`${r.name} (${r.command}) does not run: skipping its tests`);
			return false;
		}
		if (reachableSync(r.host, r.port)) continue;
		if (inCI) throw new Error(`${r.name} at ${r.host}:${r.port} is required in CI but not reachable`);
		console.warn(`${r.name} at ${r.host}:${r.port} not reachable: skipping its tests`);
		return false;
	}
	return true;
}

/** `describe` when every requirement is met, else `describe.skip` (in CI a missing service throws instead). */
export function describeWith(...requirements: Requirement[]): jest.Describe {
	return available(...requirements) ? describe : describe.skip;
}

/** `test` when every requirement is met, else `test.skip` (in CI a missing service throws instead). */
export function testWith(...requirements: Requirement[]): jest.It {
	return available(...requirements) ? test : test.skip;
}
