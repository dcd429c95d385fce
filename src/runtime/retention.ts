/**
 * The machinery of the retention sweeps (the rules are in src/domain/retention.ts): which node
 * sweeps, and a sweep as a loop of bounded steps that gives the event loop back between them.
 */
import type { ServiceBroker } from "moleculer";
import { RETENTION_BATCH } from "../domain/retention";

/**
 * One node sweeps a service's records: of the available nodes running it, the one whose id sorts
 * first. Nodes agree on it from the registry alone; while they briefly disagree (a node joining or
 * leaving) two may sweep, which costs a repeated query: every removal re-checks its rows.
 */
export function sweepsHere(broker: ServiceBroker, service: string): boolean {
	const ids = broker.registry.nodes
		.toArray()
		.filter(node => node.available && node.services.some(s => s.name === service))
		.map(node => node.id as string);
	return !ids.length || ids.sort()[0] === broker.nodeID;
}

export interface SweepStep {
	/** Rows the step's query returned (at most the batch). */
	found: number;
	/** Of those, the ones removed; the others stay and are skipped by the next step's offset. */
	removed: number;
}

/**
 * Runs `step` until a query comes back short of a batch (nothing more to look at) or `maxSteps`
 * ran; each step is one query and one removal, and the event loop turns between steps (setImmediate),
 * so requests and timers go on while a large backlog is swept. The total removed.
 */
export async function sweepInBatches(step: (offset: number, limit: number) => Promise<SweepStep>, maxSteps = 1000, batch = RETENTION_BATCH): Promise<number> {
	let offset = 0;
	let removed = 0;
	for (let i = 0; i < maxSteps; i++) {
		const done = await step(offset, batch);
		removed += done.removed;
		offset += done.found - done.removed;
		if (done.found < batch) break;
		await new Promise(resolve => setImmediate(resolve));
	}
	return removed;
}
