/**
 * Prometheus text exposition (format 0.0.4) of Moleculer's metric registry, for `GET /metrics` on
 * the gateway.
 *
 * Not Moleculer's Prometheus reporter: it always opens an HTTP server of its own (port 3030 by
 * default, no way to turn that off), and its histograms print `_sum`/`_count` only when quantiles
 * are on, while printing quantile samples under a `histogram` TYPE, which strict parsers reject.
 * Here a histogram with buckets is a proper histogram (cumulative `_bucket`s, `+Inf`, `_sum`,
 * `_count`); one with quantiles only is a summary; rates are left to PromQL's `rate()`.
 *
 * Names follow Prometheus' conventions, so that `promtool check metrics` passes: label names are
 * snake_case (Moleculer's `nodeID`, `errorName`, `targetNodeID` become `node_id`, `error_name`,
 * `target_node_id`; the common labels too), a counter's name ends in `_total`, and a gauge's does not
 * (Moleculer's `moleculer.registry.nodes.total`, a count that goes down too, is `moleculer_registry_nodes`).
 */

export interface SampleSnapshot {
	labels?: Record<string, unknown>;
	value?: unknown;
	count?: number;
	sum?: number;
	/** Upper bound → observations ≤ it (Moleculer keeps them cumulative). */
	buckets?: Record<string, number>;
	quantiles?: Record<string, number>;
}

/** One entry of `broker.metrics.list()`. */
export interface MetricFamilySnapshot {
	type: string;
	name: string;
	description?: string;
	unit?: string;
	values: SampleSnapshot[];
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Left out: Moleculer's wall-clock info metrics (their label values change every second: a new
 * series each time), and what tells a scraper about the host rather than the service (command
 * line arguments, the OS user and home folder, network addresses and MACs).
 */
const SKIPPED_PREFIXES = ["os.datetime", "process.arguments", "os.user", "os.network"];

/** `nodeID` → `node_id`, `errorName` → `error_name`, `HTTPServer` → `http_server`. */
export function snakeCase(name: string): string {
	return name
		.replace(/([a-z0-9])([A-Z])/g, "$1_$2")
		.replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
		.toLowerCase();
}

export function metricName(name: string): string {
	const cleaned = snakeCase(name).replace(/[^a-z0-9_:]/g, "_");
	return /^[a-z_:]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

/** The name a family is exposed under: `metricName`, with `_total` on counters only. */
export function exposedName(family: Pick<MetricFamilySnapshot, "name" | "type">): string {
	const name = metricName(family.name);
	if (family.type === "counter") return name.endsWith("_total") ? name : `${name}_total`;
	return name.endsWith("_total") && name !== "_total" ? name.slice(0, -"_total".length) : name;
}

export function labelName(name: string): string {
	const cleaned = snakeCase(name).replace(/[^a-z0-9_]/g, "_");
	return /^[a-z_]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

export function labelValue(value: unknown): string {
	const text = value === null || value === undefined ? "" : String(value);
	return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function helpText(text: string): string {
	return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function sampleValue(value: unknown): string {
	if (typeof value === "number") {
		if (Number.isNaN(value)) return "NaN";
		if (value === Infinity) return "+Inf";
		if (value === -Infinity) return "-Inf";
		return String(value);
	}
	if (typeof value === "boolean") return value ? "1" : "0";
	return "NaN";
}

/** Labels renamed first and merged after, so `nodeID` and `node_id` are one label (the later part wins). */
function labelSet(...parts: Array<Record<string, unknown> | undefined>): string {
	const merged = new Map<string, unknown>();
	for (const part of parts)
		for (const [key, value] of Object.entries(part ?? {})) if (value !== undefined) merged.set(labelName(key), value);
	if (!merged.size) return "";
	return `{${[...merged].map(([name, value]) => `${name}="${labelValue(value)}"`).join(",")}}`;
}

/** `le` as Prometheus writes bounds: a plain number, `+Inf` for the last. */
function bound(le: string, scale: number): string {
	const n = Number(le);
	return Number.isFinite(n) ? String(Math.round(n * scale * 1e9) / 1e9) : le;
}

function renderFamily(family: MetricFamilySnapshot, common: Record<string, unknown>, scale: number): string[] {
	const name = exposedName(family);
	const help = family.description ?? family.name + (family.unit ? ` (${family.unit})` : "");
	const samples = family.values.filter(Boolean);
	if (!samples.length) return [];
	const lines: string[] = [];
	const head = (type: string) => lines.push(`# HELP ${name} ${helpText(help)}`, `# TYPE ${name} ${type}`);

	switch (family.type) {
		case "counter":
		case "gauge":
			head(family.type);
			for (const s of samples) lines.push(`${name}${labelSet(common, s.labels)} ${sampleValue(s.value)}`);
			break;
		case "info":
			head("gauge");
			for (const s of samples) lines.push(`${name}${labelSet(common, s.labels, { value: s.value })} 1`);
			break;
		case "histogram": {
			const withBuckets = samples.some(s => s.buckets);
			head(withBuckets ? "histogram" : "summary");
			for (const s of samples) {
				if (withBuckets) {
					for (const [le, n] of Object.entries(s.buckets ?? {}).sort((a, b) => Number(a[0]) - Number(b[0])))
						lines.push(`${name}_bucket${labelSet(common, s.labels, { le: bound(le, scale) })} ${sampleValue(n)}`);
					lines.push(`${name}_bucket${labelSet(common, s.labels, { le: "+Inf" })} ${sampleValue(s.count ?? 0)}`);
				} else {
					for (const [q, v] of Object.entries(s.quantiles ?? {})) lines.push(`${name}${labelSet(common, s.labels, { quantile: q })} ${sampleValue(v * scale)}`);
				}
				lines.push(`${name}_sum${labelSet(common, s.labels)} ${sampleValue((s.sum ?? 0) * scale)}`);
				lines.push(`${name}_count${labelSet(common, s.labels)} ${sampleValue(s.count ?? 0)}`);
			}
			break;
		}
		default:
			return [];
	}
	return lines;
}

/**
 * The exposition text. `commonLabels` go on every sample (the node's `node_id` and `namespace`): each
 * node is scraped on its own, and they keep its series apart from other nodes'.
 */
export interface RenderOptions {
	/** Histograms recorded in milliseconds and exposed in seconds (bounds and sums divided by 1000). */
	millisecondsAsSeconds?: ReadonlySet<string>;
}

export function renderPrometheus(families: readonly MetricFamilySnapshot[], commonLabels: Record<string, string> = {}, options: RenderOptions = {}): string {
	const lines: string[] = [];
	const seen = new Set<string>();
	for (const family of families) {
		if (SKIPPED_PREFIXES.some(p => family.name.startsWith(p))) continue;
		// Two registry names may clean up to one Prometheus name: a second TYPE line would break the scrape.
		const name = exposedName(family);
		if (seen.has(name)) continue;
		seen.add(name);
		lines.push(...renderFamily(family, commonLabels, options.millisecondsAsSeconds?.has(family.name) ? 0.001 : 1));
	}
	return lines.length ? `${lines.join("\n")}\n` : "";
}
