/**
 * A read model kept in memory: the whole list as last read, served at once; re-read in the
 * background once older than `maxAgeMs`, and read afresh by the next caller after `invalidate`
 * (a change announced anywhere in the cluster). A read that began before a change is never
 * installed after it, so a caller that saw the change never gets an older list.
 */
interface Reading<T> {
	at: number;
	items: Promise<T[]>;
}

export class Snapshot<T> {
	private current?: Reading<T>;
	private refreshing?: Reading<T>;
	private generation = 0;

	constructor(private readonly read: () => Promise<T[]>, private readonly maxAgeMs: number) {}

	get(): Promise<T[]> {
		if (!this.current) return (this.current = this.start()).items;
		if (Date.now() - this.current.at >= this.maxAgeMs && !this.refreshing) {
			const refresh = (this.refreshing = this.start());
			const done = () => (this.refreshing = undefined);
			refresh.items.then(done, done);
		}
		return this.current.items;
	}

	invalidate(): void {
		this.current = undefined;
		this.generation++;
	}

	/**
	 * A change this node made and knows in full: patched into the list held (`next` null: removed;
	 * kept in `order`) rather than read again, which for a registry of thousands is the cost of a
	 * full read per change. A read in flight began before the change, so it is never installed.
	 */
	patch(sameItem: (item: T) => boolean, next: T | null, order: (a: T, b: T) => number): void {
		this.generation++;
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
		const generation = this.generation;
		const reading: Reading<T> = { at: Date.now(), items: this.read() };
		reading.items.then(
			() => {
				if (generation === this.generation && (!this.current || this.current.at <= reading.at)) this.current = reading;
			},
			() => {
				if (this.current === reading) this.current = undefined;
			}
		);
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
