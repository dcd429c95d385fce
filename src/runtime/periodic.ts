/** A job run every `ms`, never overlapping itself: a slow run skips the ticks it overlaps. */
export function every(ms: number, job: () => Promise<void>, onError: (err: unknown) => void): NodeJS.Timeout {
	let running = false;
	const timer = setInterval(() => {
		if (running) return;
		running = true;
		job().catch(onError).finally(() => (running = false));
	}, ms);
	timer.unref();
	return timer;
}
