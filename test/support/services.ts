/**
 * Real backing services for tests. Outside CI a missing service skips the tests that need it;
 * with CI=true it fails them: CI must run everything but MongoDB.
 */
import net from "node:net";

export const inCI = process.env.CI === "true";

export function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect({ host, port });
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}

/** Throws in CI when the service is down; otherwise tells whether to run. */
export async function requireService(name: string, host: string, port: number): Promise<boolean> {
	if (await reachable(host, port)) return true;
	if (inCI) throw new Error(`${name} at ${host}:${port} is required in CI but not reachable`);
	console.warn(`${name} at ${host}:${port} not reachable: skipping its tests`);
	return false;
}

export const POSTGRES = { host: "127.0.0.1", port: 5432 };
export const NATS = { host: "127.0.0.1", port: 4222 };
export const REDIS = { host: "127.0.0.1", port: 6379 };
