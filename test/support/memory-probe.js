/**
 * Preloaded into a node under test (`node -r test/support/memory-probe.js …`): samples process.memoryUsage()
 * every 10 ms and keeps the peak of each figure in MEMORY_PROBE_FILE ({ now, peak }), rewritten when a peak
 * rises. SIGUSR2 starts a new measurement: the peaks go back to the current figures.
 */
const { writeFileSync } = require("node:fs");

const file = process.env.MEMORY_PROBE_FILE;
if (file) {
	const KEYS = ["rss", "heapUsed", "heapTotal", "external", "arrayBuffers"];
	let peak = process.memoryUsage();
	const write = (now) => writeFileSync(file, JSON.stringify({ now, peak }));
	setInterval(() => {
		const now = process.memoryUsage();
		let rose = false;
		for (const key of KEYS) {
			if (now[key] > peak[key]) {
				peak = { ...peak, [key]: now[key] };
				rose = true;
			}
		}
		if (rose) write(now);
	}, 10).unref();
	process.on("SIGUSR2", () => {
		peak = process.memoryUsage();
		write(peak);
	});
	write(peak);
}
