/**
 * One `pg` pool per database URL per process, shared by every collection of the node (six stores
 * would otherwise hold six pools' connections), and ended when the last store using it closes.
 * The hot path (reads, batched writes) runs on it directly: Sequelize stays for the schema only.
 * TLS and the rest come from the URL as pg reads it (`sslmode`, `sslrootcert`, …).
 */
import { Pool } from "pg";
import { SharedResources } from "../platform/shared-resources";

/** Connections per node: enough for the batches of every table in flight at once. */
const POOL_SIZE = 10;

const pools = new SharedResources<string, Pool>(pool => pool.end());

export function acquirePool(url: string, onError: (err: Error) => void): Pool {
	return pools.acquire(url, () => {
		const pool = new Pool({ connectionString: url, max: POOL_SIZE, idleTimeoutMillis: 30_000 });
		// An idle connection the server dropped: pg discards it; without a listener it would end the process.
		pool.on("error", onError);
		return pool;
	});
}

export function releasePool(url: string): Promise<void> {
	return pools.release(url);
}
