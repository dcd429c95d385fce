/**
 * Storage adapters by name, in the manner of Moleculer's own registries: `MONGODB_URI` picks
 * `mongo`, `DATABASE_URL` picks `postgres`, else `nedb` (see config.ts). A new store is one file
 * exporting a `StorageAdapter`, and one line here.
 */
import type { StorageKind } from "../platform/config";
import { mongoStorage } from "./mongo";
import { nedbStorage } from "./nedb";
import { postgresStorage } from "./postgres";
import type { StorageAdapter } from "./storage-adapter";

export const STORAGES: Readonly<Record<StorageKind, StorageAdapter>> = {
	nedb: nedbStorage,
	postgres: postgresStorage,
	mongo: mongoStorage
};

export function resolveStorage(name: StorageKind): StorageAdapter {
	const storage = Object.hasOwn(STORAGES, name) ? STORAGES[name] : undefined;
	if (!storage) throw new Error(`Unknown storage '${name}' (known: ${Object.keys(STORAGES).join(", ")})`);
	return storage;
}
