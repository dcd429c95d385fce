/**
 * What the stages make of values read as text, and of column names, so every stage that types raw rows agrees.
 */
import type { DataRecord } from "../src/stage-contract";

const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Numbers stay text when converting would lose information: leading zeros (postcodes, codes like "007")
 * and integers too large to hold exactly (long account numbers).
 */
export function cleanValue(value: unknown): unknown {
	if (typeof value !== "string") return value;
	const text = value.trim();
	if (text === "") return null;
	if (!NUMERIC.test(text) || /^[+-]?0\d/.test(text)) return text;
	const number = Number(text);
	if (!Number.isFinite(number)) return text;
	if (Number.isInteger(number) && !/[.eE]/.test(text) && !Number.isSafeInteger(number)) return text;
	return number;
}

export function cleanRecords(records: DataRecord[]): DataRecord[] {
	return records.map((record) => {
		const out: DataRecord = {};
		for (const [key, value] of Object.entries(record)) out[key] = cleanValue(value);
		return out;
	});
}

export function toSnakeCase(name: string): string {
	const snake = name
		.trim()
		.replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, "$1_$2")
		.replace(/(\p{Lu}+)(\p{Lu}\p{Ll})/gu, "$1_$2")
		.replace(/[^\p{L}\p{N}]+/gu, "_")
		.replace(/^_+|_+$/g, "")
		.toLowerCase();
	return snake === "" ? "column" : snake;
}

/** Parameters and forwarded results are unchecked JSON: a list counts only when every item is a string. */
export function stringArray(value: unknown): string[] | undefined {
	return Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : undefined;
}
