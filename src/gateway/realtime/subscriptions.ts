/**
 * Per-client subscription filters, shared by the socket.io and `/ws` channels.
 *
 * Plain sets rather than socket.io rooms: the same filter must serve both channels, and an agent
 * token's scope has to be intersected with its subscriptions, which rooms (a union) cannot
 * express. Delivery still encodes each event once per channel (see `socketio-channel.ts`).
 */
import type { ClusterMessage } from "../../types";

export const SUBSCRIPTION_KEYS = ["task_id", "pipeline_id", "run_id", "agent_id"] as const;
export type SubscriptionKey = (typeof SUBSCRIPTION_KEYS)[number];
/** What one `subscribe` / `unsubscribe` names: any of the keys, each one id. */
export type SubscriptionRequest = Partial<Record<SubscriptionKey, string>>;
export type SubscriptionSnapshot = Record<SubscriptionKey, string[]>;

/** Bounds the memory one client can pin with subscriptions. */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;
const MAX_ID_LENGTH = 200;

export class SubscriptionError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "SubscriptionError";
	}
}

/**
 * Validates a client's `subscribe`/`unsubscribe` body. `type` is ignored (the `/ws` envelope);
 * unknown keys are refused so that a typo does not silently subscribe to nothing.
 */
export function parseSubscriptionRequest(body: unknown, allowEmpty = false): SubscriptionRequest {
	if (body === undefined || body === null) {
		if (allowEmpty) return {};
		throw new SubscriptionError(`expected an object with one of ${SUBSCRIPTION_KEYS.join(", ")}`);
	}
	if (typeof body !== "object" || Array.isArray(body)) throw new SubscriptionError("expected an object");
	const request: SubscriptionRequest = {};
	for (const [key, value] of Object.entries(body)) {
		if (key === "type") continue;
		if (!(SUBSCRIPTION_KEYS as readonly string[]).includes(key))
			throw new SubscriptionError(`unknown key "${key}" (expected ${SUBSCRIPTION_KEYS.join(", ")})`);
		if (typeof value !== "string" || value === "" || value.length > MAX_ID_LENGTH)
			throw new SubscriptionError(`${key} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
		request[key as SubscriptionKey] = value;
	}
	if (!allowEmpty && Object.keys(request).length === 0)
		throw new SubscriptionError(`expected one of ${SUBSCRIPTION_KEYS.join(", ")}`);
	return request;
}

/** The ids a message is about, under the key a client subscribes with. */
export function messageIds(message: ClusterMessage): SubscriptionRequest {
	switch (message.type) {
		case "task_update":
			return {
				task_id: message.task_id,
				pipeline_id: message.pipeline_id ?? undefined,
				run_id: message.run_id ?? undefined,
				// Subscribing to an agent includes the tasks it is working on.
				agent_id: message.assigned_agent ?? undefined
			};
		case "agent_update":
			return { agent_id: message.agent_id };
		case "pipeline_progress":
			return { pipeline_id: message.pipeline_id, run_id: message.run_id };
		case "error":
			return { task_id: message.task_id, pipeline_id: message.pipeline_id, run_id: message.run_id, agent_id: message.agent_id };
	}
}

/** One client's filter: empty = every event; otherwise an event matching any subscribed id. */
export class Subscriptions {
	private readonly ids: Record<SubscriptionKey, Set<string>> = {
		task_id: new Set(),
		pipeline_id: new Set(),
		run_id: new Set(),
		agent_id: new Set()
	};
	private count = 0;

	get isEmpty(): boolean {
		return this.count === 0;
	}

	add(request: SubscriptionRequest): void {
		const fresh = SUBSCRIPTION_KEYS.filter(key => request[key] !== undefined && !this.ids[key].has(request[key]!));
		if (this.count + fresh.length > MAX_SUBSCRIPTIONS_PER_CLIENT)
			throw new SubscriptionError(`at most ${MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions per client`);
		for (const key of fresh) this.ids[key].add(request[key]!);
		this.count += fresh.length;
	}

	/** An empty request drops every subscription: the client gets everything again. */
	remove(request: SubscriptionRequest): void {
		const keys = SUBSCRIPTION_KEYS.filter(key => request[key] !== undefined);
		if (keys.length === 0) {
			for (const key of SUBSCRIPTION_KEYS) this.ids[key].clear();
			this.count = 0;
			return;
		}
		for (const key of keys) if (this.ids[key].delete(request[key]!)) this.count--;
	}

	matches(message: ClusterMessage): boolean {
		if (this.count === 0) return true;
		const ids = messageIds(message);
		return SUBSCRIPTION_KEYS.some(key => ids[key] !== undefined && this.ids[key].has(ids[key]!));
	}

	snapshot(): SubscriptionSnapshot {
		return {
			task_id: [...this.ids.task_id],
			pipeline_id: [...this.ids.pipeline_id],
			run_id: [...this.ids.run_id],
			agent_id: [...this.ids.agent_id]
		};
	}
}
