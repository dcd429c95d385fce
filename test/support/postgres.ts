/** A fresh PostgreSQL database per test file on the machine's server, dropped afterwards. */
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { POSTGRES } from "./services";

const ADMIN_URL = process.env.TEST_POSTGRES_ADMIN_URL ?? `postgres://postgres@${POSTGRES.host}:${POSTGRES.port}/postgres`;

export interface TestDatabase {
	url: string;
	drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
	const name = `mcp_test_${randomBytes(6).toString("hex")}`;
	const admin = new Client({ connectionString: ADMIN_URL });
	await admin.connect();
	await admin.query(`CREATE DATABASE ${name}`);
	await admin.end();
	const url = ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
	return {
		url,
		async drop() {
			const client = new Client({ connectionString: ADMIN_URL });
			await client.connect();
			await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
			await client.end();
		}
	};
}
