/**
 * A circuit breaker per HTTP agent: after `threshold` consecutive failed deliveries the agent is
 * skipped for `openMs`; then one delivery is let through (half-open) and its outcome decides.
 * Moleculer agents need none of this: Moleculer's own breaker guards calls to their node.
 */
export interface BreakerOptions {
	threshold: number;
	openMs: number;
}

interface BreakerState {
	failures: number;
	openUntil: number;
}

export class DeliveryBreaker {
	private readonly states = new Map<string, BreakerState>();

	constructor(private readonly opts: BreakerOptions) {}

	/** Open: give this agent nothing now. */
	isOpen(agentId: string, now = Date.now()): boolean {
		const state = this.states.get(agentId);
		return state !== undefined && state.openUntil > now;
	}

	succeeded(agentId: string): void {
		this.states.delete(agentId);
	}

	/** True when this failure opened the breaker. */
	failed(agentId: string, now = Date.now()): boolean {
		const state = this.states.get(agentId) ?? { failures: 0, openUntil: 0 };
		state.failures++;
		this.states.set(agentId, state);
		if (state.failures >= this.opts.threshold) {
			state.openUntil = now + this.opts.openMs;
			return true;
		}
		return false;
	}
}
