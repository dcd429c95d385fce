/**
 * Data files for the reference worker, wherever they are (agents/locations): how a data file is read, streamed
 * through its parser, and how large intermediate results are parked beside the output instead of travelling inside
 * task results. Nothing here holds a whole file: text goes through the parsers chunk by chunk, and written files
 * go out in chunks too.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type { Readable } from "node:stream";
import type { DataRecord } from "../src/stage-contract";
import { normaliseDelimiter } from "./csv";
import { csvRecords } from "./csv-stream";
import { JsonArraySplitter, jsonErrorOffset, JsonPosition } from "./json-stream";
import type { DataLocation } from "./locations";
import { StageInputError } from "./stage-error";

export type DataFormat = "csv" | "json" | "jsonl";

export interface LoadedData {
	records: DataRecord[];
	columns: string[];
	format: DataFormat;
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
export function detectFormat(name: string, explicit?: unknown): DataFormat {
	if (typeof explicit === "string" && explicit.trim() !== "") {
		const format = FORMAT_ALIASES[explicit.trim().toLowerCase()];
		if (!format) throw new StageInputError(`unsupported data format ${JSON.stringify(explicit)} (expected csv, tsv, json or jsonl)`);
		return format;
	}
	const ext = path.extname(name).slice(1).toLowerCase();
	return FORMAT_ALIASES[ext] ?? "csv";
}

export interface ReadOptions {
	format?: unknown;
	delimiter?: unknown;
	/** The largest object accepted (agents/locations/byte-limit.ts). */
	maxBytes: number;
}

/** A data file's rows as they are read; `columns()` is complete once `records` has been read to its end. */
export interface RecordStream {
	format: DataFormat;
	records: AsyncIterable<DataRecord>;
	columns(): string[];
	/** The source's version (see OpenedSource): names what was made from it. */
	version: string;
}

/** The one way a data file becomes rows: its bytes, streamed, through the parser its format names. */
export async function openRecords(location: DataLocation, what: string, options: ReadOptions): Promise<RecordStream> {
	const format = detectFormat(location.basename, options.format);
	const delimiter =
		format === "csv"
			? normaliseDelimiter(options.delimiter, path.extname(location.basename).toLowerCase() === ".tsv" || String(options.format).toLowerCase() === "tsv" ? "\t" : ",")
			: undefined;
	const opened = await location.open(what, options.maxBytes);
	if (delimiter !== undefined) {
		const csv = csvRecords(opened.stream, delimiter, location.given);
		return { format, records: csv.records, columns: csv.columns, version: opened.version };
	}
	const text = textOf(opened.stream);
	const rows = format === "json" ? jsonDocumentRecords(text, location.given) : jsonLineRecords(text, location.given);
	// Union of keys in first-seen order, so sparse JSON rows still yield every column.
	const seen = new Set<string>();
	async function* tracked(): AsyncGenerator<DataRecord> {
		for await (const record of rows) {
			for (const key of Object.keys(record)) seen.add(key);
			yield record;
		}
	}
	return { format, records: tracked(), columns: () => [...seen], version: opened.version };
}

export async function readDataFile(location: DataLocation, options: ReadOptions): Promise<LoadedData> {
	const stream = await openRecords(location, "data source", options);
	const records: DataRecord[] = [];
	for await (const record of stream.records) records.push(record);
	return { records, columns: stream.columns(), format: stream.format };
}

async function* textOf(stream: Readable): AsyncGenerator<string> {
	stream.setEncoding("utf8");
	for await (const chunk of stream) yield chunk as string;
}

async function* linesOf(text: AsyncIterable<string>): AsyncGenerator<string> {
	let rest = "";
	for await (const chunk of text) {
		const lines = (rest + chunk).split("\n");
		rest = lines.pop() ?? "";
		for (const line of lines) yield line;
	}
	if (rest !== "") yield rest;
}

function parseJsonLine(line: string, index: number, location: string): DataRecord {
	try {
		return toRecord(JSON.parse(line));
	} catch (err) {
		const column = jsonErrorOffset(err);
		throw new StageInputError(`${location} line ${index} is not valid JSON${column === undefined ? "" : ` (column ${column + 1})`}`);
	}
}

async function* jsonLineRecords(text: AsyncIterable<string>, location: string): AsyncGenerator<DataRecord> {
	let index = 0;
	for await (const line of linesOf(text)) {
		index++;
		if (line.trim() !== "") yield parseJsonLine(line.replace(/\r$/, ""), index, location);
	}
}

/** A top-level array streams element by element; `onBreak` names the failure where the text stops being one. */
async function* arrayRecords(text: AsyncIterable<string>, splitter: JsonArraySplitter, onBreak: (at: JsonPosition) => Error): AsyncGenerator<DataRecord> {
	try {
		for await (const chunk of text) for (const value of splitter.push(chunk)) yield toRecord(value);
		splitter.end();
	} catch (err) {
		throw err instanceof JsonPosition ? onBreak(err) : err;
	}
}

/**
 * A "json" file: an array streams; any other document (rows wrapped in an object, one object) is read whole, within
 * the size limit. One that does not parse as a single value is read as JSON lines, which is common under .json.
 */
async function* jsonDocumentRecords(text: AsyncIterable<string>, location: string): AsyncGenerator<DataRecord> {
	const iterator = text[Symbol.asyncIterator]();
	let head = "";
	for (;;) {
		const next = await iterator.next();
		if (next.done) break;
		head += next.value;
		if (head.trim() !== "") break;
	}
	const rest = { [Symbol.asyncIterator]: () => iterator };
	async function* all(): AsyncGenerator<string> {
		yield head;
		yield* rest;
	}
	if (head.trimStart().startsWith("[")) {
		yield* arrayRecords(all(), new JsonArraySplitter(), (at) => new StageInputError(`${location} line ${at.line} is not valid JSON (column ${at.column})`));
		return;
	}
	let whole = "";
	for await (const chunk of all()) whole += chunk;
	yield* parseJsonRecords(whole, location);
}

function parseJsonRecords(text: string, location: string): DataRecord[] {
	let document: unknown;
	try {
		document = JSON.parse(text);
	} catch {
		const records: DataRecord[] = [];
		text.split(/\r?\n/).forEach((line, index) => {
			if (line.trim() !== "") records.push(parseJsonLine(line, index + 1, location));
		});
		return records;
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

/** Rows as a JSON array, one row a line, in chunks of about 64 KiB: the text a spill file holds. */
export async function* jsonArrayText(rows: Iterable<DataRecord> | AsyncIterable<DataRecord>): AsyncGenerator<string> {
	let chunk = "[";
	let first = true;
	for await (const row of rows) {
		chunk += (first ? "\n" : ",\n") + JSON.stringify(row);
		first = false;
		if (chunk.length >= 65_536) {
			yield chunk;
			chunk = "";
		}
	}
	yield chunk + (first ? "]\n" : "\n]\n");
}

/** 12 hex digits of SHA-256 over the chunks: spill files are named after what they hold. */
export async function digestOf(chunks: Iterable<string> | AsyncIterable<string>): Promise<string> {
	const hash = createHash("sha256");
	for await (const chunk of chunks) hash.update(chunk);
	return hash.digest("hex").slice(0, 12);
}

/** A spill file's rows: it must hold one JSON array, read element by element. */
export async function loadSpilledRows(location: DataLocation, what: string, maxBytes: number): Promise<DataRecord[]> {
	const opened = await location.open(what, maxBytes);
	const splitter = new JsonArraySplitter();
	const notArray = () => new StageInputError(`${what} ${location.given} does not hold a JSON array`);
	const broken = (at: JsonPosition) => (splitter.isArray ? new StageInputError(`${what} ${location.given} is not valid JSON (${at.message})`) : notArray());
	const rows: DataRecord[] = [];
	for await (const row of arrayRecords(textOf(opened.stream), splitter, broken)) rows.push(row);
	if (!splitter.isArray) throw notArray();
	return rows;
}
