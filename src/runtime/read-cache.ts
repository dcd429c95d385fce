/**
 * Answers of read actions (a page of tasks, a pipeline with its runs), remembered until the next
 * write to any store of this node. A panel or a script polling the same list is then answered from
 * memory, and a list read after a write is never older than the write: every write clears the
 * cache as it completes, before the writer's own answer goes out, and a read in flight at that
 * moment is not kept.
 *
 * Only while this node holds the cluster's only stores (no other node runs one of our storage
 * services): another node's writes would not clear it. In a cluster every read goes to the store.
 */
import type { ServiceBroker } from "moleculer";
import type { EntityStore } from "../storage/entity-store";

/**
 * Distinct reads remembered at once; the oldest go first. Few: panels and scripts poll a handful of
 * queries, and a page may hold 1,000 tasks, so many pages kept for anyone who varies the query would be memory for the taking.
 */
const MAX_ENTRIES = 64;
/** The longest an answer is kept, a bound for any write this node does not see (none, while it is alone). */
const MAX_AGE_MS = 5_000;

/** EntityStore's methods that only read: every other one is taken as a write. */
const READS: ReadonlySet<PropertyKey> = new Set(["spec", "get", "find", "count", "ping", "close"]);

interface Entry {
	at: number;
	value: Promise<unknown>;
}

export class ReadCache {
	private readonly entries = new Map<string, Entry>();
	/** Storage services of this node, by name: the cache holds while no other node runs one. */
	readonly storageServices = new Set<string>();
	private alone = true;

	/** The cluster's services changed: is this node still the only one with stores? */
	placeServices(remote: Array<{ name: string; nodeID: string }>, ownNodeId: string): void {
		const alone = !remote.some(s => s.nodeID !== ownNodeId && this.storageServices.has(s.name));
		if (!alone) this.entries.clear();
		this.alone = alone;
	}

	changed(): void {
		if (this.entries.size) this.entries.clear();
	}

	read<T>(key: string, compute: () => Promise<T>, now = Date.now()): Promise<T> {
		if (!this.alone) return compute();
		const known = this.entries.get(key);
		if (known && now - known.at < MAX_AGE_MS) return known.value as Promise<T>;
		const value = compute();
		// Concurrent reads of the same key share one computation; a failed one is not kept.
		const entry: Entry = { at: now, value };
		this.entries.delete(key);
		this.entries.set(key, entry);
		if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
		value.catch(() => {
			if (this.entries.get(key) === entry) this.entries.delete(key);
		});
		return value;
	}

	/** The store, with every write clearing this cache once it completes (or fails: it may have half-applied). */
	watching<T extends object>(store: EntityStore<T>): EntityStore<T> {
		return new Proxy(store, {
			get: (target, property, receiver) => {
				const member = Reflect.get(target, property, receiver);
				if (typeof member !== "function") return member;
				// Bound to the store itself, so that its own calls of its helpers never come back here as writes.
				if (READS.has(property)) return member.bind(target);
				return (...args: unknown[]) => {
					const result = (member as (...a: unknown[]) => unknown).apply(target, args);
					if (result instanceof Promise) return result.finally(() => this.changed());
					this.changed();
					return result;
				};
			}
		});
	}
}

const caches = new WeakMap<ServiceBroker, ReadCache>();

/**
 * This node's read cache, one for all its storage services (an answer may read several
 * collections), placed again each time the cluster's services change.
 */
export function readCacheOf(broker: ServiceBroker): ReadCache {
	let cache = caches.get(broker);
	if (!cache) {
		const made = (cache = new ReadCache());
		caches.set(broker, made);
		broker.localBus.on("$services.changed", () =>
			made.placeServices(broker.registry.getServiceList({ skipInternal: true }) as Array<{ name: string; nodeID: string }>, broker.nodeID)
		);
	}
	return cache;
}
