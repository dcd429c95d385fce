/**
 * One `pg` pool per database URL per process, shared by every collection of the node (six stores
 * would otherwise hold six pools' connections), and ended when the last store using it closes.
 * The hot path (reads, batched writes) runs on it directly: Sequelize stays for the schema only.
 * TLS and the rest come from the URL as pg reads it (`sslmode`, `sslrootcert`, …).
 */
import { Pool } from "pg";

/** Connections per node: enough for the batches of every table in flight at once. */
const POOL_SIZE = 10;

const pools = new Map<string, { pool: Pool; users: number }>();

export function acquirePool(url: string, onError: (err: Error) => void): Pool {
	let entry = pools.get(url);
	if (!entry) {
		const pool = new Pool({ connectionString: url, max: POOL_SIZE, idleTimeoutMillis: 30_000 });
		// An idle connection the server dropped: pg discards it; without a listener it would end the process.
		pool.on("error", onError);
		pools.set(url, (entry = { pool, users: 0 }));
	}
	entry.users++;
	return entry.pool;
}

export async function releasePool(url: string): Promise<void> {
	const entry = pools.get(url);
	if (!entry || --entry.users > 0) return;
	pools.delete(url);
	await entry.pool.end();
}
