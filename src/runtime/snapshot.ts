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
