/**
 * A rogue on the transporter: a plain Moleculer broker (not our `brokerOptions`, so no trust
 * middleware, no JWT_SECRET, no API key unless a test hands it one) joined to a cluster's NATS and
 * namespace, as any process that reached the bus could be. Helpers to record what it is sent and
 * to see what its calls are answered.
 */
import { randomBytes } from "node:crypto";
import { Errors, ServiceBroker, type Context, type ServiceSchema } from "moleculer";
import { waitFor } from "./http";

export interface Rogue {
	broker: ServiceBroker;
	nodeID: string;
	/** A call as the rogue makes it; resolves with the answer or with the refusal's code, type and message. */
	call(action: string, params?: unknown, meta?: Record<string, unknown>, nodeID?: string): Promise<CallOutcome>;
	stop(): Promise<void>;
}

export type CallOutcome = { ok: true; result: unknown } | { ok: false; code: number | undefined; type: string | undefined; message: string; data: unknown };

export function rogueNodeId(prefix = "rogue"): string {
	return `${prefix}-${randomBytes(3).toString("hex")}`;
}

export async function startRogue(transporter: string, namespace: string, opts: { nodeID?: string; services?: Partial<ServiceSchema>[]; sees?: string[] } = {}): Promise<Rogue> {
	const nodeID = opts.nodeID ?? rogueNodeId();
	// A URL, as a process would give it (Moleculer's typings list only transporter names).
	const broker = new ServiceBroker({ transporter: transporter as "NATS", namespace, nodeID, logger: false, requestTimeout: 5000 });
	// A rogue that takes a node's id does not stop itself for the conflict, as Moleculer would (by exiting this process).
	broker.fatal = () => undefined;
	for (const schema of opts.services ?? []) broker.createService(schema as ServiceSchema);
	await broker.start();
	// The rogue knows these nodes, so its calls go out; whether they took its INFO is the test's to wait for.
	for (const node of opts.sees ?? []) await waitFor(async () => broker.registry.nodes.get(node)?.available, 10_000);
	return {
		broker,
		nodeID,
		call: (action, params = {}, meta = {}, target) =>
			broker.call(action, params as object, { meta, nodeID: target, retries: 0 }).then(
				result => ({ ok: true as const, result }),
				(err: Errors.MoleculerError) => ({ ok: false as const, code: err.code, type: err.type, message: err.message, data: err.data })
			),
		stop: () => broker.stop()
	};
}

/** What a rogue's handler was given: its params and meta, as they arrived. */
export interface Received {
	name: string;
	params: unknown;
	meta: unknown;
}

/** A service that records every call and event it receives (and answers calls with `{ ok: true }`). */
export function recordingService(name: string, received: Received[], schema: { actions?: string[]; events?: Array<string | { name: string; group?: string }>; settings?: Record<string, unknown> }): Partial<ServiceSchema> {
	// What other nodes send; not the rogue's own `$` events a wildcard listener hears as well.
	const keep = (what: string) => (ctx: Context) => {
		if (ctx.nodeID !== ctx.broker.nodeID) received.push({ name: what, params: ctx.params, meta: ctx.meta });
	};
	return {
		name,
		settings: schema.settings,
		actions: Object.fromEntries((schema.actions ?? []).map(action => [action, { handler: (ctx: Context) => (keep(`${name}:${action}`)(ctx), { ok: true }) }])),
		events: Object.fromEntries(
			(schema.events ?? []).map(e => {
				const { name: event, group } = typeof e === "string" ? { name: e, group: undefined } : e;
				return [event, { group, handler: keep(`${name}:event:${event}`) }];
			})
		)
	};
}

/**
 * For "nothing happened" assertions only: there is no event to wait for when the point is that
 * none comes, so the test gives the forgery a bounded moment to (not) take effect. Packets from
 * one NATS connection arrive in order and our handlers run within milliseconds on a local bus, so
 * this is well above what a wrongly accepted packet would need; keep it at or under a second.
 */
export function quietPeriod(ms = 500): Promise<void> {
	if (ms > 1000) throw new Error("a quiet period is a bounded wait for nothing to happen: keep it ≤ 1 s");
	return new Promise(resolve => setTimeout(resolve, ms));
}

/** Any JWT-looking string in a value (a token of ours would be one). */
export function jwtsIn(value: unknown): string[] {
	return JSON.stringify(value ?? null).match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) ?? [];
}
