/**
 * A read model kept in memory: the whole list as last read, served at once while younger than
 * `maxAgeMs`, and read afresh by the next caller once older, or after `invalidate` (a change
 * announced anywhere in the cluster). A change this node made is patched in, also into a read
 * still in flight, so a caller that saw the change never gets an older list.
 */
interface Reading<T> {
	at: number;
	items: Promise<T[]>;
}

export class Snapshot<T> {
	private current?: Reading<T>;

	constructor(private readonly read: () => Promise<T[]>, private readonly maxAgeMs: number) {}

	get(): Promise<T[]> {
		// Older than maxAgeMs: read again, and this caller waits for it (a change another node made
		// may not have been announced to us: a lost event costs at most maxAgeMs of staleness).
		if (!this.current || Date.now() - this.current.at >= this.maxAgeMs) this.current = this.start();
		return this.current.items;
	}

	invalidate(): void {
		this.current = undefined;
	}

	/**
	 * A change this node made and knows in full: patched into the list held (`next` null: removed;
	 * kept in `order`) rather than read again, which for a registry of thousands is the cost of a
	 * full read per change. A read in flight began before the change: it gets the patch too.
	 */
	patch(sameItem: (item: T) => boolean, next: T | null, order: (a: T, b: T) => number): void {
		const held = this.current;
		if (!held) return;
		this.current = {
			at: held.at,
			items: held.items.then(items => {
				const rest = items.filter(item => !sameItem(item));
				if (next) rest.splice(insertionPoint(rest, next, order), 0, next);
				return rest;
			})
		};
	}

	private start(): Reading<T> {
		const reading: Reading<T> = { at: Date.now(), items: this.read() };
		// A failed read is not served again.
		reading.items.catch(() => {
			if (this.current === reading) this.current = undefined;
		});
		return reading;
	}
}

function insertionPoint<T>(sorted: T[], item: T, order: (a: T, b: T) => number): number {
	let low = 0;
	let high = sorted.length;
	while (low < high) {
		const mid = (low + high) >>> 1;
		if (order(sorted[mid], item) <= 0) low = mid + 1;
		else high = mid;
	}
	return low;
}
