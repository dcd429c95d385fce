/** One timer per key: setting a key again replaces its timer. Timers never keep the process alive. */

// setTimeout cannot wait longer; a later deadline is re-armed when this one fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class KeyedTimers {
	private readonly timers = new Map<string, NodeJS.Timeout>();

	/** Calls `fire` at `at` (epoch ms; at once when past). */
	set(key: string, at: number, fire: () => void): void {
		this.clear(key);
		const delay = Math.max(0, at - Date.now());
		const timer = setTimeout(() => {
			if (this.timers.get(key) !== timer) return;
			if (delay > MAX_TIMER_MS) return this.set(key, at, fire);
			this.timers.delete(key);
			fire();
		}, Math.min(delay, MAX_TIMER_MS));
		timer.unref();
		this.timers.set(key, timer);
	}

	clear(key: string): void {
		clearTimeout(this.timers.get(key));
		this.timers.delete(key);
	}

	clearAll(): void {
		for (const timer of this.timers.values()) clearTimeout(timer);
		this.timers.clear();
	}

	get size(): number {
		return this.timers.size;
	}
}
