/** Coalescing: many calls in a burst become one run at most every `ms` (the last call's turn is never lost). */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
	let timer: ReturnType<typeof setTimeout> | null = null;
	let last = 0;
	const run = () => {
		timer = null;
		last = Date.now();
		fn();
	};
	const call = () => {
		if (timer) return;
		timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
	};
	call.cancel = () => {
		if (timer) clearTimeout(timer);
		timer = null;
	};
	return call;
}
