/**
 * What every view shares: agents, the overview, a ticking clock, and the live feed. Views hook into
 * the feed (`onLive`) and into resyncs (`onResync`: re-fetch what they show after a reconnect or a
 * gap in `seq`).
 */
import { signal } from "@preact/signals";
import type { Agent } from "../../../src/types";
import { get } from "../lib/api";
import type { AgentPage, LiveMessage, Overview } from "../lib/api-types";
import { throttle } from "../lib/schedule";
import { applyAgentUpdate } from "./reducers";

export const agents = signal<Agent[]>([]);
export const agentsTotal = signal(0);
export const overview = signal<Overview | null>(null);
/** Epoch ms, ticking every second: ages and durations count up without a fetch. */
export const now = signal(Date.now());
/** Last failure of a shared fetch, shown in the header. */
export const loadError = signal<string | null>(null);

setInterval(() => (now.value = Date.now()), 1000);

type Listener<T> = (value: T) => void;
const liveListeners = new Set<Listener<LiveMessage>>();
const resyncListeners = new Set<() => void>();

export function onLive(fn: Listener<LiveMessage>): () => void {
	liveListeners.add(fn);
	return () => void liveListeners.delete(fn);
}

export function onResync(fn: () => void): () => void {
	resyncListeners.add(fn);
	return () => void resyncListeners.delete(fn);
}

async function guarded(load: () => Promise<void>): Promise<void> {
	try {
		await load();
		loadError.value = null;
	} catch (err) {
		loadError.value = err instanceof Error ? err.message : String(err);
	}
}

export const AGENT_PAGE = 1000;

export function loadAgents(): Promise<void> {
	return guarded(async () => {
		const page = await get<AgentPage>("/agents", { limit: AGENT_PAGE });
		agents.value = page.agents;
		agentsTotal.value = page.total;
	});
}

export function loadOverview(): Promise<void> {
	return guarded(async () => {
		overview.value = await get<Overview>("/overview");
	});
}

const refreshAgents = throttle(() => void loadAgents(), 1000);
const refreshOverview = throttle(() => void loadOverview(), 2000);

export function handleLive(message: LiveMessage): void {
	if (message.type === "agent_update") {
		const outcome = applyAgentUpdate(agents.value, message);
		if (outcome.unknown) {
			refreshAgents();
			// The agent list is cached for a second on the server: a second look sees the newcomer for sure.
			setTimeout(refreshAgents, 1500);
		} else agents.value = outcome.agents;
	}
	// Counts and capacity follow every change; one fetch per burst.
	if (message.type !== "error") refreshOverview();
	for (const fn of liveListeners) fn(message);
}

export function resyncAll(): void {
	void loadAgents();
	void loadOverview();
	for (const fn of resyncListeners) fn();
}
