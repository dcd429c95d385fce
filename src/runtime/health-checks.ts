/** One poll of an HTTP agent's `endpoints.health`: healthy on a 2xx within the timeout. */
export async function probeHealth(url: string, timeoutMs: number): Promise<boolean> {
	try {
		const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
		await res.body?.cancel();
		return res.ok;
	} catch {
		return false;
	}
}
