/**
 * The last minutes of task flow in fixed buckets, for the panel's charts: tasks completed and
 * failed per bucket, and the queue depth at its end. Kept from the cluster's events by the metrics
 * service, so a panel opened now still sees the past quarter of an hour.
 */
export interface HistoryPoint {
	/** The bucket's start. */
	t: string;
	completed: number;
	failed: number;
	queue_depth: number;
}

export const HISTORY_BUCKET_MS = 10_000;
export const HISTORY_BUCKETS = 90;

interface Bucket {
	start: number;
	completed: number;
	failed: number;
	queue_depth: number;
}

export class TaskHistory {
	private readonly buckets: Bucket[] = [];

	constructor(private readonly bucketMs = HISTORY_BUCKET_MS, private readonly size = HISTORY_BUCKETS) {}

	/** A task ended (completed or failed) at `now`. */
	ended(status: "completed" | "failed", now = Date.now()): void {
		this.bucketAt(now)[status]++;
	}

	/** The queue depth as of `now` (the bucket keeps the last one it was told). */
	queueDepth(depth: number, now = Date.now()): void {
		this.bucketAt(now).queue_depth = depth;
	}

	/** Oldest first, every bucket of the window present (quiet ones as zeros, carrying the queue depth on). */
	points(now = Date.now()): HistoryPoint[] {
		const last = this.startOf(now);
		const byStart = new Map(this.buckets.map(b => [b.start, b]));
		const points: HistoryPoint[] = [];
		let depth = 0;
		for (let start = last - (this.size - 1) * this.bucketMs; start <= last; start += this.bucketMs) {
			const bucket = byStart.get(start);
			if (bucket) depth = bucket.queue_depth;
			points.push({ t: new Date(start).toISOString(), completed: bucket?.completed ?? 0, failed: bucket?.failed ?? 0, queue_depth: depth });
		}
		return points;
	}

	private startOf(now: number): number {
		return now - (now % this.bucketMs);
	}

	private bucketAt(now: number): Bucket {
		const start = this.startOf(now);
		let bucket = this.buckets.at(-1);
		if (!bucket || bucket.start !== start) {
			bucket = { start, completed: 0, failed: 0, queue_depth: bucket?.queue_depth ?? 0 };
			this.buckets.push(bucket);
			while (this.buckets.length > this.size) this.buckets.shift();
		}
		return bucket;
	}
}
