/**
 * Shutdown of raw WebSockets: a close frame first, so clients know to reconnect elsewhere, then a
 * hard cut for any peer that does not answer. `ws` alone would wait 30 s for the answer, and the
 * gateway's HTTP server cannot finish closing while an upgraded socket is open.
 */
import type { WebSocket } from "ws";

export const SHUTDOWN_GRACE_MS = 1000;

export function closeWithin(sockets: Iterable<WebSocket>, code: number, reason: string, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
	const waiting = [...sockets].filter(ws => ws.readyState !== ws.CLOSED);
	if (waiting.length === 0) return Promise.resolve();
	return new Promise(resolve => {
		let open = waiting.length;
		const timer = setTimeout(() => {
			for (const ws of waiting) if (ws.readyState !== ws.CLOSED) ws.terminate();
			resolve();
		}, graceMs);
		timer.unref();
		for (const ws of waiting) {
			ws.once("close", () => {
				if (--open > 0) return;
				clearTimeout(timer);
				resolve();
			});
			if (ws.readyState === ws.OPEN) ws.close(code, reason);
		}
	});
}
