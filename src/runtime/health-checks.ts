/**
 * Polls of HTTP agents' `endpoints.health`: healthy on a 2xx within the timeout, through the
 * egress policy (a redirect is not followed and counts as unhealthy). At most `limit` at once.
 */
import type { EgressPolicy } from "./egress";

/** Health polls in flight at once on one node. */
export const HEALTH_POLL_CONCURRENCY = 16;

export async function probeHealth(egress: EgressPolicy, url: string, timeoutMs: number): Promise<boolean> {
	try {
		return (await egress.fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).ok;
	} catch {
		return false;
	}
}
