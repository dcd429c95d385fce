/**
 * What a stage works from: the payload made safe to read (a standalone payload is whatever its caller wrote), where
 * its rows come from (an upstream result, payload records or the data source itself), where large rows and the
 * output go (inside the agent's data root, or on S3 beside an s3:// output), and the context forwarded from the
 * stages before it.
 */
import path from "node:path";
import type { DataRecord, NumericSummary, StageContext, StagePayload, StageType, UpstreamEntry, ValidationIssue } from "../src/stage-contract";
import { columnsOf, isPlainObject, loadSpilledRows, readDataFile, type ReadOptions } from "./data-files";
import type { DataLocation, Locations } from "./locations";
import { maxObjectBytes } from "./locations/byte-limit";
import { StageInputError } from "./stage-error";
import { cleanRecords, stringArray } from "./values";

export type ProgressReporter = (progress: number, message?: string) => void;

/** A dependency's status goes unread: only a completed one carries a result, and the result is what counts. */
type Dependency = Omit<UpstreamEntry, "status">;

export interface StageRun {
	type: StageType;
	payload: StagePayload;
	inputData: Record<string, unknown>;
	params: Record<string, unknown>;
	/** Highest index first: the nearest dependency wins ties. */
	upstream: Dependency[];
	stageName: string;
	progress: (fraction: number, message: string) => void;
	/** Every location the stage reads or writes is resolved through it. */
	locations: Locations;
	/** The largest object the stage reads (parameters.max_object_bytes, at most the agent's limit). */
	maxBytes: number;
}

export interface RecordSet {
	records: DataRecord[];
	columns: string[];
	/** Straight from a file or ingestion: values are still the strings that were read. */
	raw: boolean;
}

/** Stages compute on typed values whichever way their rows came, so a raw set is cleaned first. */
export function typedRecords(set: RecordSet): DataRecord[] {
	return set.raw ? cleanRecords(set.records) : set.records;
}

export function prepareRun(type: StageType, payload: StagePayload, locations: Locations, report?: ProgressReporter): StageRun {
	const upstream: Dependency[] = [];
	if (isPlainObject(payload.upstream)) {
		for (const [name, entry] of Object.entries(payload.upstream)) {
			if (!isPlainObject(entry)) continue;
			upstream.push({
				index: typeof entry.index === "number" ? entry.index : -1,
				// An entry without a type is taken to be named after its stage type, as in the default pipeline.
				type: typeof entry.type === "string" ? entry.type : name,
				result: entry.result
			});
		}
	}
	upstream.sort((a, b) => b.index - a.index);
	const stage: Record<string, unknown> = isPlainObject(payload.stage) ? payload.stage : {};
	const params = isPlainObject(payload.parameters) ? payload.parameters : {};
	return {
		type,
		payload,
		inputData: isPlainObject(payload.input_data) ? payload.input_data : {},
		params,
		upstream,
		stageName: typeof stage.name === "string" && stage.name.trim() !== "" ? stage.name : type,
		locations,
		maxBytes: maxObjectBytes(params.max_object_bytes),
		progress: (fraction, message) => {
			if (!report) return;
			// Progress is advisory: a failing reporter must not fail the work itself.
			try {
				const returned: unknown = report(Math.min(1, Math.max(0, fraction)), message);
				if (returned instanceof Promise) returned.catch(() => undefined);
			} catch {
				// ignored on purpose, see above
			}
		}
	};
}

// ---------- where data comes from and goes to ----------

function firstString(...values: unknown[]): string | undefined {
	for (const value of values) if (typeof value === "string" && value.trim() !== "") return value.trim();
	return undefined;
}

export function sourceLocation(run: StageRun): string | undefined {
	return firstString(run.payload.data_source, run.params.data_source, run.inputData.source, run.inputData.data_source);
}

export function inlineRecords(run: StageRun): DataRecord[] | undefined {
	const rows = Array.isArray(run.payload.records) ? run.payload.records : run.inputData.records;
	return Array.isArray(rows) ? rows.filter(isPlainObject) : undefined;
}

export const stem = (name: string): string => path.basename(name, path.extname(name));

/** Explicit output location, else `<input-basename>.output.json` next to the input (in its folder or key prefix). */
export function outputLocation(run: StageRun, source: string | undefined): DataLocation | undefined {
	const explicit = firstString(run.params.output, run.inputData.output, run.payload.output);
	if (explicit) return run.locations.resolve(explicit, "output");
	if (!source) return undefined;
	const input = run.locations.resolve(source, "data source");
	return input.sibling(`${stem(input.basename)}.output.json`);
}

export function hasRows(result: unknown, key: "records" | "groups"): result is Record<string, unknown> {
	return isPlainObject(result) && (Array.isArray(result[key]) || typeof result[`${key}_file`] === "string");
}

/** An upstream's `records_file` / `groups_file` is a location like any other: inside the root, or on S3. */
export async function loadRows(run: StageRun, result: Record<string, unknown>, key: "records" | "groups"): Promise<DataRecord[]> {
	const inline = result[key];
	if (Array.isArray(inline)) return inline.filter(isPlainObject);
	const what = `${key}_file`;
	return loadSpilledRows(run.locations.resolve(String(result[what]), what), what, run.maxBytes);
}

/**
 * Rows for a stage: from the upstream whose type comes first in `preferred` (nearest index on ties), else rows
 * in the payload, else the data source read directly, which lets any stage run as a standalone task.
 */
export async function obtainRecords(run: StageRun, preferred: StageType[]): Promise<RecordSet | undefined> {
	const rank = (entry: Dependency): number => {
		const at = (preferred as string[]).indexOf(entry.type);
		return at === -1 ? preferred.length : at;
	};
	const candidates = run.upstream.filter((entry) => hasRows(entry.result, "records"));
	candidates.sort((a, b) => rank(a) - rank(b) || b.index - a.index);
	const chosen = candidates[0];
	if (chosen && isPlainObject(chosen.result)) {
		const records = await loadRows(run, chosen.result, "records");
		const columns = stringArray(chosen.result.columns) ?? columnsOf(records);
		return { records, columns, raw: chosen.type === "data-ingestion" };
	}
	const inline = inlineRecords(run);
	if (inline) return { records: inline, columns: columnsOf(inline), raw: true };
	const location = sourceLocation(run);
	if (location) {
		const data = await readDataFile(run.locations.resolve(location, "data source"), readOptions(run));
		return { records: data.records, columns: data.columns, raw: true };
	}
	return undefined;
}

export async function requireRecords(run: StageRun, preferred: StageType[]): Promise<RecordSet> {
	const set = await obtainRecords(run, preferred);
	if (!set) {
		throw new StageInputError(
			`${run.type}: no input records: expected an upstream ${preferred[0]} result, payload records, ` +
				"or a data source (data_source / input_data.source)"
		);
	}
	return set;
}

export function readOptions(run: StageRun): ReadOptions {
	return {
		format: run.params.format ?? run.inputData.format ?? run.payload.format,
		delimiter: run.params.delimiter ?? run.inputData.delimiter ?? run.payload.delimiter,
		maxBytes: run.maxBytes
	};
}

/** Merges what the dependencies forwarded; a direct analysis or validation result is fresher than a forwarded one. */
export function gatherContext(run: StageRun): StageContext {
	const context: StageContext = {};
	const oldestFirst = [...run.upstream].reverse();
	for (const entry of oldestFirst) {
		const result = entry.result;
		if (!isPlainObject(result)) continue;
		if (isPlainObject(result.context)) Object.assign(context, result.context);
		if (typeof result.source === "string" && entry.type === "data-ingestion") context.source = result.source;
	}
	for (const entry of oldestFirst) {
		const result = entry.result;
		if (!isPlainObject(result)) continue;
		if (entry.type === "analysis" && isPlainObject(result.statistics)) {
			context.analysis = {
				count: typeof result.count === "number" ? result.count : 0,
				statistics: result.statistics as Record<string, NumericSummary>,
				groups: isPlainObject(result.groups) ? (result.groups as Record<string, Record<string, number>>) : {}
			};
		}
		if (entry.type === "validation" && typeof result.valid === "number" && typeof result.invalid === "number") {
			context.validation = {
				valid: result.valid,
				invalid: result.invalid,
				error_count: typeof result.error_count === "number" ? result.error_count : result.invalid,
				errors: Array.isArray(result.errors) ? (result.errors as ValidationIssue[]) : []
			};
		}
	}
	if (!context.source) {
		const location = sourceLocation(run);
		// Only a usable source (inside the root, or a valid s3:// URL) can anchor default output paths; any other was
		// already refused on reading.
		if (location) {
			try {
				context.source = run.locations.resolve(location, "data source").href;
			} catch {
				// leave unset
			}
		}
	}
	return context;
}

export function columnList(value: unknown, what: string): string[] | undefined {
	if (value === undefined || value === null || value === "") return undefined;
	const list =
		typeof value === "string"
			? value.split(",").map((v) => v.trim()).filter((v) => v !== "")
			: stringArray(value);
	if (!list) throw new StageInputError(`${what} must be a column name or a list of column names`);
	return list;
}

export function requireKnownColumns(list: string[], columns: string[], what: string): void {
	const unknown = list.filter((column) => !columns.includes(column));
	if (unknown.length > 0) {
		// The available names are not listed: they are the file's header, and error messages carry no file content.
		throw new StageInputError(`${what} names unknown column(s) ${unknown.join(", ")} (the input has ${columns.length} columns)`);
	}
}
