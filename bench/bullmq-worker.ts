/** The peer scenario's BullMQ side: a Worker process running no-op jobs (BENCH_QUEUE, BENCH_REDIS, BENCH_CONCURRENCY). */
import { Worker } from "bullmq";

const worker = new Worker(process.env.BENCH_QUEUE!, async () => ({ ok: true }), {
	connection: { url: process.env.BENCH_REDIS ?? "redis://127.0.0.1:6379" },
	concurrency: Number(process.env.BENCH_CONCURRENCY ?? 100)
});
void worker.waitUntilReady().then(() => process.send?.({ ready: true }));
process.on("disconnect", () => void worker.close().then(() => process.exit(0)));
