/**
 * What the pure figure trackers hand back: metric operations as data, so they are tested without a
 * broker, and applied to Moleculer's registry in one place.
 */
import type { MetricRegistry } from "moleculer";
import { MILLISECOND_HISTOGRAMS, type McpMetricName } from "./definitions";

export type MetricLabels = Record<string, string>;

export type MetricUpdate =
	| { op: "increment"; name: McpMetricName; labels?: MetricLabels; value?: number }
	| { op: "set"; name: McpMetricName; labels?: MetricLabels; value: number }
	/** `value` in seconds for our histograms (stored as milliseconds, see definitions.ts). */
	| { op: "observe"; name: McpMetricName; labels?: MetricLabels; value: number };

export function applyMetricUpdates(registry: MetricRegistry, updates: readonly MetricUpdate[]): void {
	for (const update of updates) {
		switch (update.op) {
			case "increment":
				registry.increment(update.name, update.labels, update.value ?? 1);
				break;
			case "set":
				registry.set(update.name, update.value, update.labels);
				break;
			case "observe":
				registry.observe(update.name, MILLISECOND_HISTOGRAMS.has(update.name) ? update.value * 1000 : update.value, update.labels);
				break;
		}
	}
}

/** Seconds between two ISO timestamps; null when either is missing, unparsable or out of order. */
export function secondsBetween(from: string | null | undefined, to: string | null | undefined): number | null {
	if (!from || !to) return null;
	const ms = Date.parse(to) - Date.parse(from);
	return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null;
}
