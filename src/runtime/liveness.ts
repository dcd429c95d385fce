/**
 * What the registry heard from its agents lately: the time of each agent's last heartbeat (or
 * healthy poll) and the load it reported, in memory, never written per beat. Liveness is a fact of
 * the last few seconds: losing it with a node costs nothing but a grace period, while writing it
 * cost one durable write per agent per second (the whole core's CPU at 2,000 agents).
 *
 * Core nodes share what they hear: each collects the beats it took since its last batch and
 * broadcasts them once per tick (`agent.heard`, one message for any number of agents), so every
 * node's silence sweep sees every agent's beat within about a tick. A new load is announced at
 * once as `agent.updated` (news for the dispatchers and the panel), without a write.
 */
import type { AgentHeardEvent } from "../types";

export interface Heard {
	/** ms since the epoch. */
	at: number;
	/** The load the agent last reported, if it ever did. */
	load?: number;
}

/** The most a batch from another node may carry, and how long an entry may be, before it is dropped whole. */
const MAX_BATCH = 100_000;
const MAX_ID_LENGTH = 200;

export class LivenessBook {
	private readonly heard = new Map<string, Heard>();
	private pending = new Map<string, Heard>();

	/** A beat taken on this node: kept, and queued for the next batch to the other nodes. */
	record(id: string, at: number, load?: number): void {
		const entry = this.merge(id, at, load);
		if (entry) this.pending.set(id, entry);
	}

	get(id: string): Heard | undefined {
		return this.heard.get(id);
	}

	/** The agent is gone (removed): what was heard of it goes too. */
	forget(id: string): void {
		this.heard.delete(id);
		this.pending.delete(id);
	}

	/** The beats taken since the last call, as one batch for the other nodes; null when there were none. */
	takeBatch(): AgentHeardEvent | null {
		if (!this.pending.size) return null;
		const beats: AgentHeardEvent["beats"] = [];
		for (const [id, { at, load }] of this.pending) beats.push(load === undefined ? [id, at] : [id, at, load]);
		this.pending = new Map();
		return { beats };
	}

	/** Another node's batch (a beat from the future counts from now). */
	mergeBatch(event: unknown, now = Date.now()): void {
		for (const [id, at, load] of beatsOf(event)) this.merge(id, Math.min(at, now), load);
	}

	/** Keeps the later beat; returns the entry if this one was news. */
	private merge(id: string, at: number, load?: number): Heard | null {
		const known = this.heard.get(id);
		if (known && known.at > at) return null;
		const entry: Heard = load === undefined ? { at, ...(known?.load !== undefined ? { load: known.load } : {}) } : { at, load };
		this.heard.set(id, entry);
		return entry;
	}
}

/**
 * The beats of an `agent.heard` batch. It comes from a trusted node, but is checked as any input
 * is: a malformed batch is dropped whole.
 */
export function beatsOf(event: unknown): AgentHeardEvent["beats"] {
	const beats = (event as AgentHeardEvent | null)?.beats;
	if (!Array.isArray(beats) || beats.length > MAX_BATCH) return [];
	const valid = beats.every(
		b =>
			Array.isArray(b) &&
			typeof b[0] === "string" && b[0].length <= MAX_ID_LENGTH &&
			Number.isFinite(b[1]) &&
			(b[2] === undefined || (typeof b[2] === "number" && b[2] >= 0 && b[2] <= 1))
	);
	return valid ? beats : [];
}
