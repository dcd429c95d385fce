/**
 * Delivery transports by name, in the manner of Moleculer's own registries (strategies, cachers,
 * transporters): a new transport is one file exporting a factory, and one line here.
 */
import type { TaskEvent } from "../../domain/tasks/decide";
import type { Agent } from "../../types";
import { httpTransport } from "./http";
import { moleculerTransport } from "./moleculer";
import type { DeliveryOutcome, DeliveryTransport, TransportContext, TransportFactory } from "./transport";

export const TRANSPORTS: Readonly<Record<string, TransportFactory>> = {
	moleculer: moleculerTransport,
	http: httpTransport
};

export function resolveTransport(name: string): TransportFactory {
	const factory = Object.hasOwn(TRANSPORTS, name) ? TRANSPORTS[name] : undefined;
	if (!factory) throw new Error(`Unknown delivery transport '${name}' (known: ${Object.keys(TRANSPORTS).join(", ")})`);
	return factory;
}

/** Agents announced by a Moleculer node are called on it; every other agent is reached over HTTP. */
export function transportNameOf(agent: Pick<Agent, "node_id" | "service">): string {
	return agent.node_id && agent.service ? "moleculer" : "http";
}

/** One instance of every transport for a node's dispatcher. */
export class Deliveries {
	private readonly transports = new Map<string, DeliveryTransport>();

	constructor(private readonly context: TransportContext) {}

	for(agent: Pick<Agent, "node_id" | "service">): DeliveryTransport {
		const name = transportNameOf(agent);
		let transport = this.transports.get(name);
		if (!transport) this.transports.set(name, (transport = resolveTransport(name)(this.context)));
		return transport;
	}
}

/** Wait before offering a task again after its agent could not be reached (its node may still be announcing itself). */
const UNREACHABLE_RETRY_MS = 250;

/** What a delivery's outcome means for attempt `attempt` of the task: its next event, or none (the agent will report). */
export function eventAfterDelivery(outcome: DeliveryOutcome, agentId: string, attempt: number): TaskEvent | null {
	switch (outcome.kind) {
		case "accepted":
			return null;
		case "result":
			return { type: "complete", result: outcome.result, attempt };
		case "failed":
			return { type: "fail", failure: outcome.failure, attempt };
		case "unreachable":
			return { type: "requeue", agentId, reason: `was unreachable (${outcome.reason})`, delayMs: UNREACHABLE_RETRY_MS, undoAttempt: !outcome.delivered };
	}
}

export type { DeliveryOutcome, DeliveryTransport, TransportContext } from "./transport";
