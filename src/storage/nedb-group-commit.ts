/**
 * Group commit for NeDB. NeDB runs every operation through one serial executor and appends each
 * change to its file on its own (open, write, close) before the next operation may start, which caps
 * the embedded store at a few hundred writes a second. Here the executor moves on at once, and the
 * changes are appended in batches: one append in flight, everything that arrives meanwhile gathered
 * into the next. Callers that need durability wait for `flushed()`, which resolves once their change
 * is in the file.
 */
type Doc = Record<string, unknown>;
interface Persistence {
	persistNewStateAsync(docs: Doc[]): Promise<void>;
}

interface Batch {
	docs: Doc[];
	written: Promise<void>;
	settle(err?: unknown): void;
}

function openBatch(): Batch {
	let settle!: Batch["settle"];
	const written = new Promise<void>((resolve, reject) => (settle = err => (err ? reject(err) : resolve())));
	// A failed append is reported to the callers waiting on `flushed()`, never as an unhandled rejection.
	written.catch(() => undefined);
	return { docs: [], written, settle };
}

export class NedbGroupCommit {
	/** Gathering changes; written when the append in flight is done. */
	private next: Batch | null = null;
	private inFlight: Batch | null = null;
	private readonly append: (docs: Doc[]) => Promise<void>;

	constructor(persistence: Persistence) {
		this.append = persistence.persistNewStateAsync.bind(persistence);
		persistence.persistNewStateAsync = async docs => {
			this.enqueue(docs);
		};
	}

	private enqueue(docs: Doc[]): void {
		if (!this.next) {
			this.next = openBatch();
			// Let the rest of this event-loop turn join the batch.
			if (!this.inFlight) setImmediate(() => this.writeNext());
		}
		this.next.docs.push(...docs);
	}

	private writeNext(): void {
		const batch = this.next;
		if (!batch || this.inFlight) return;
		this.next = null;
		this.inFlight = batch;
		this.append(batch.docs).then(
			() => batch.settle(),
			err => batch.settle(err ?? new Error("append failed"))
		).finally(() => {
			this.inFlight = null;
			this.writeNext();
		});
	}

	/** Resolves when every change made so far is in the file. */
	flushed(): Promise<void> {
		return (this.next ?? this.inFlight)?.written ?? Promise.resolve();
	}
}
