/**
 * Resources a node's services share under one key (a database URL's connection pool, a broker's
 * quota counters): made by the first user that acquires one, closed when the last releases it.
 */
interface Entries<K, V> {
	get(key: K): { value: V; users: number } | undefined;
	set(key: K, entry: { value: V; users: number }): unknown;
	delete(key: K): boolean;
}

export class SharedResources<K, V> {
	/** `entries`: a WeakMap where the key is an object whose resources must not outlive it (a broker). */
	constructor(private readonly close: (value: V) => Promise<void> | void, private readonly entries: Entries<K, V> = new Map()) {}

	acquire(key: K, create: () => V): V {
		let entry = this.entries.get(key);
		if (!entry) this.entries.set(key, (entry = { value: create(), users: 0 }));
		entry.users++;
		return entry.value;
	}

	async release(key: K): Promise<void> {
		const entry = this.entries.get(key);
		if (!entry || --entry.users > 0) return;
		this.entries.delete(key);
		await this.close(entry.value);
	}
}
