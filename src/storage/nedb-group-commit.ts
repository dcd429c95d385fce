/**
 * Group commit for NeDB. NeDB runs every operation through one serial executor and appends each
 * change to its file on its own (open, write, close) before the next operation may start, which caps
 * the embedded store at a few hundred writes a second. Here the appends of one event-loop turn are
 * gathered into a single append, and the executor moves on at once; callers that need durability
 * wait for `flushed()`, which resolves once their change is in the file.
 */
type Doc = Record<string, unknown>;
interface Persistence {
	persistNewStateAsync(docs: Doc[]): Promise<void>;
}

export class NedbGroupCommit {
	private batch: Doc[] = [];
	private batchWritten: Promise<void> | null = null;
	private lastWrite: Promise<void> = Promise.resolve();
	private readonly append: (docs: Doc[]) => Promise<void>;

	constructor(persistence: Persistence) {
		this.append = persistence.persistNewStateAsync.bind(persistence);
		persistence.persistNewStateAsync = async docs => {
			this.enqueue(docs);
		};
	}

	private enqueue(docs: Doc[]): void {
		this.batch.push(...docs);
		this.batchWritten ??= new Promise<void>((resolve, reject) =>
			setImmediate(() => {
				const docs = this.batch;
				this.batch = [];
				this.batchWritten = null;
				// Batches are written in order; a failed write does not block the ones after it.
				this.lastWrite = this.lastWrite.catch(() => undefined).then(() => this.append(docs));
				this.lastWrite.then(resolve, reject);
			})
		);
	}

	/** Resolves when every change made so far is in the file. */
	flushed(): Promise<void> {
		return this.batchWritten ?? this.lastWrite;
	}
}
