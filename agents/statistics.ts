/**
 * Column profiling and summary statistics shared by the analysis, validation and processing stages,
 * so they agree on which columns are numeric and which are categories.
 */
import type { DataRecord, NumericSummary } from "../src/stage-contract";

export type ColumnKind = "number" | "string" | "boolean" | "mixed" | "empty";

export interface ColumnProfile {
	name: string;
	kind: ColumnKind;
	/** Rows where the value is null, undefined or an empty string. */
	missing: number;
	/** Distinct non-missing values, counted up to a cap (see profileColumns). */
	distinct: number;
}

/** Floating-point sums print as 59.970000000000006; 15 significant digits drops that noise and nothing real. */
export function roundNumber(value: number): number {
	return Number.isFinite(value) ? Number(value.toPrecision(15)) : value;
}

export function isMissing(value: unknown): boolean {
	return value === null || value === undefined || (typeof value === "string" && value.trim() === "");
}

export function isNumber(value: unknown): value is number {
	return typeof value === "number" && Number.isFinite(value);
}

/** Row ids are numbers but not quantities: summing or averaging them means nothing. */
export function isIdentifierColumn(name: string): boolean {
	return /^(id|.*_id|.*Id|uuid|key)$/.test(name);
}

const DISTINCT_CAP = 10_000;

/**
 * A column is numeric when most present values are numbers, so one stray "N/A" leaves it numeric (and lets
 * validation flag the stray) instead of silently turning the whole column into text.
 */
export function profileColumns(records: DataRecord[], columns: string[]): ColumnProfile[] {
	return columns.map((name) => {
		let numbers = 0;
		let strings = 0;
		let booleans = 0;
		let missing = 0;
		const distinct = new Set<string>();
		for (const record of records) {
			const value = record[name];
			if (isMissing(value)) {
				missing++;
				continue;
			}
			if (isNumber(value)) numbers++;
			else if (typeof value === "string") strings++;
			else if (typeof value === "boolean") booleans++;
			if (distinct.size < DISTINCT_CAP) distinct.add(typeof value === "string" ? value : JSON.stringify(value));
		}
		const present = records.length - missing;
		let kind: ColumnKind = "mixed";
		if (present === 0) kind = "empty";
		else if (numbers * 2 > present) kind = "number";
		else if (strings * 2 > present) kind = "string";
		else if (booleans * 2 > present) kind = "boolean";
		return { name, kind, missing, distinct: distinct.size };
	});
}

/**
 * Few enough distinct values to be a category worth counting: at most `maxDistinct`, and repeated on average
 * (free text, names and dates are near-unique and would just echo the data back).
 */
export function isCategorical(profile: ColumnProfile, rowCount: number, maxDistinct: number): boolean {
	if (profile.kind !== "string" && profile.kind !== "boolean") return false;
	const present = rowCount - profile.missing;
	return profile.distinct > 0 && profile.distinct <= maxDistinct && profile.distinct <= Math.max(1, Math.ceil(present / 2));
}

export function summarise(values: number[], missing: number): NumericSummary | null {
	if (values.length === 0) return null;
	const sorted = [...values].sort((a, b) => a - b);
	const n = sorted.length;
	const sum = sorted.reduce((acc, v) => acc + v, 0);
	const mean = sum / n;
	const middle = Math.floor(n / 2);
	const median = n % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
	const variance = n > 1 ? sorted.reduce((acc, v) => acc + (v - mean) ** 2, 0) / (n - 1) : 0;
	return {
		count: n,
		missing,
		min: sorted[0],
		max: sorted[n - 1],
		sum: roundNumber(sum),
		mean: roundNumber(mean),
		median: roundNumber(median),
		stddev: roundNumber(Math.sqrt(variance))
	};
}

export function numericValues(records: DataRecord[], column: string): number[] {
	const values: number[] = [];
	for (const record of records) {
		const value = record[column];
		if (isNumber(value)) values.push(value);
	}
	return values;
}

/** Counts per value, most frequent first (ties by value, so results are stable across runs). */
export function valueCounts(records: DataRecord[], column: string): Record<string, number> {
	const counts = new Map<string, number>();
	for (const record of records) {
		const value = record[column];
		if (isMissing(value)) continue;
		const key = String(value);
		counts.set(key, (counts.get(key) ?? 0) + 1);
	}
	const ordered = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
	return Object.fromEntries(ordered);
}
