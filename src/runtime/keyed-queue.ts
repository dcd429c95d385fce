/**
 * One-at-a-time mailbox per entity id: the actor guarantee inside a node. Work for the same key
 * runs strictly in arrival order; different keys run concurrently. Empty mailboxes are dropped.
 */
export class KeyedQueue {
	private readonly tails = new Map<string, Promise<unknown>>();

	run<T>(key: string, work: () => Promise<T>): Promise<T> {
		const previous = this.tails.get(key) ?? Promise.resolve();
		const result = previous.then(work, work);
		const tail = result.then(
			() => undefined,
			() => undefined
		);
		this.tails.set(key, tail);
		void tail.then(() => {
			if (this.tails.get(key) === tail) this.tails.delete(key);
		});
		return result;
	}

	get size(): number {
		return this.tails.size;
	}
}
