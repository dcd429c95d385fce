/**
 * Local data files for the reference worker: how a data file is read, and how large intermediate results are
 * parked on disk instead of travelling inside task results. Every file goes through the agent's data root.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { DataRecord } from "../src/stage-contract";
import { normaliseDelimiter, parseCsv } from "./csv";
import type { DataRoot } from "./data-root";
import { StageInputError } from "./stage-error";

export type DataFormat = "csv" | "json" | "jsonl";

export interface LoadedData {
	records: DataRecord[];
	columns: string[];
	format: DataFormat;
}

export function toFileUrl(filePath: string): string {
	return pathToFileURL(filePath).href;
}

const FORMAT_ALIASES: Record<string, DataFormat> = {
	csv: "csv",
	tsv: "csv",
	json: "json",
	jsonl: "jsonl",
	ndjson: "jsonl",
	"json-lines": "jsonl",
	jsonlines: "jsonl"
};

/** The explicit format wins; otherwise the extension decides, and unknown extensions are treated as CSV. */
export function detectFormat(filePath: string, explicit?: unknown): DataFormat {
	if (typeof explicit === "string" && explicit.trim() !== "") {
		const format = FORMAT_ALIASES[explicit.trim().toLowerCase()];
		if (!format) throw new StageInputError(`unsupported data format ${JSON.stringify(explicit)} (expected csv, tsv, json or jsonl)`);
		return format;
	}
	const ext = path.extname(filePath).slice(1).toLowerCase();
	return FORMAT_ALIASES[ext] ?? "csv";
}

export interface ReadOptions {
	format?: unknown;
	delimiter?: unknown;
}

export async function readDataFile(root: DataRoot, location: string, options: ReadOptions = {}): Promise<LoadedData> {
	const filePath = root.locate(location, "data source");
	const format = detectFormat(filePath, options.format);
	const text = await root.readText(location, "data source");
	if (format === "csv") {
		const isTsv = path.extname(filePath).toLowerCase() === ".tsv" || String(options.format).toLowerCase() === "tsv";
		const table = parseCsv(text, normaliseDelimiter(options.delimiter, isTsv ? "\t" : ","));
		return { records: table.rows, columns: table.columns, format };
	}
	const records = format === "json" ? parseJsonRecords(text, location) : parseJsonLines(text, location);
	return { records, columns: columnsOf(records), format };
}

/**
 * A "json" file that is really JSON lines is common (and the extension says nothing), so a document that does
 * not parse as one value falls back to line-by-line reading.
 */
function parseJsonRecords(text: string, location: string): DataRecord[] {
	let document: unknown;
	try {
		document = JSON.parse(text);
	} catch {
		return parseJsonLines(text, location);
	}
	if (Array.isArray(document)) return document.map(toRecord);
	if (isPlainObject(document)) {
		// Exports often wrap the rows: { "records": [...] } or { "data": [...] }.
		for (const key of ["records", "data", "items", "rows"]) {
			const rows = document[key];
			if (Array.isArray(rows)) return rows.map(toRecord);
		}
		return [document];
	}
	return [toRecord(document)];
}

function parseJsonLines(text: string, location: string): DataRecord[] {
	const records: DataRecord[] = [];
	text.split(/\r?\n/).forEach((line, index) => {
		if (line.trim() === "") return;
		try {
			records.push(toRecord(JSON.parse(line)));
		} catch (err) {
			const column = jsonErrorOffset(err);
			throw new StageInputError(`${location} line ${index + 1} is not valid JSON${column === undefined ? "" : ` (column ${column + 1})`}`);
		}
	});
	return records;
}

/**
 * Where JSON.parse gave up, as an offset into its text. Its message is not passed on: newer V8 versions quote
 * the text they failed on, and an error message must not carry a file's content.
 */
function jsonErrorOffset(err: unknown): number | undefined {
	const at = /at position (\d+)/.exec(err instanceof Error ? err.message : "")?.[1];
	return at === undefined ? undefined : Number(at);
}

function lineAndColumn(text: string, offset: number): string {
	const before = text.slice(0, offset).split("\n");
	return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** Rows must be objects for the later stages; a bare value becomes a one-column record. */
function toRecord(value: unknown): DataRecord {
	return isPlainObject(value) ? value : { value };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Union of keys in first-seen order, so sparse JSON rows still yield every column. */
export function columnsOf(records: DataRecord[]): string[] {
	const seen = new Set<string>();
	for (const record of records) for (const key of Object.keys(record)) seen.add(key);
	return [...seen];
}

/**
 * Writes rows to a JSON file named after their content: a retried stage rewrites the same file and two runs over
 * different data never clobber each other.
 */
export async function spillRows(root: DataRoot, dir: string, prefix: string, rows: DataRecord[]): Promise<string> {
	const content = JSON.stringify(rows);
	const digest = createHash("sha256").update(content).digest("hex").slice(0, 12);
	const written = await root.writeText(path.join(dir, `${prefix}.${digest}.json`), "spill file", content);
	return toFileUrl(written);
}

export async function loadSpilledRows(root: DataRoot, location: string, what: string): Promise<DataRecord[]> {
	const text = await root.readText(location, what);
	let document: unknown;
	try {
		document = JSON.parse(text);
	} catch (err) {
		const offset = jsonErrorOffset(err);
		throw new StageInputError(`${what} ${location} is not valid JSON${offset === undefined ? "" : ` (${lineAndColumn(text, offset)})`}`);
	}
	if (!Array.isArray(document)) throw new StageInputError(`${what} ${location} does not hold a JSON array`);
	return document.map(toRecord);
}
