/**
 * Local data files for the reference worker: where a location points, how a data file is read,
 * and how large intermediate results are parked on disk instead of travelling inside task results.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DataRecord } from "../src/stage-contract";
import { normaliseDelimiter, parseCsv } from "./csv";
import { StageInputError } from "./stage-error";

export type DataFormat = "csv" | "json" | "jsonl";

export interface LoadedData {
	records: DataRecord[];
	columns: string[];
	format: DataFormat;
}

/**
 * Turns a file:// URL or a plain path into an absolute local path. Other schemes are refused by name, since
 * the reference worker runs on one machine and would otherwise report a confusing "file not found".
 */
export function toLocalPath(location: string, what = "data source"): string {
	const trimmed = location.trim();
	if (trimmed === "") throw new StageInputError(`${what} is empty`);
	// Two or more letters: a single letter before ":" is a Windows drive, not a scheme.
	const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(trimmed)?.[1]?.toLowerCase();
	if (scheme === "file") {
		try {
			return fileURLToPath(trimmed);
		} catch (err) {
			throw new StageInputError(`${what} ${trimmed} is not a valid file:// URL: ${(err as Error).message}`);
		}
	}
	if (scheme !== undefined) {
		throw new StageInputError(`unsupported ${what} scheme ${scheme}: (the reference worker reads file:// only): ${trimmed}`);
	}
	return path.resolve(trimmed);
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

export async function readDataFile(filePath: string, options: ReadOptions = {}): Promise<LoadedData> {
	const format = detectFormat(filePath, options.format);
	let text: string;
	try {
		text = await readFile(filePath, "utf8");
	} catch (err) {
		const code = (err as NodeJS.ErrnoException).code;
		if (code === "ENOENT") throw new StageInputError(`data source ${filePath} does not exist`);
		throw new Error(`cannot read data source ${filePath}: ${(err as Error).message}`);
	}
	if (format === "csv") {
		const isTsv = path.extname(filePath).toLowerCase() === ".tsv" || String(options.format).toLowerCase() === "tsv";
		const table = parseCsv(text, normaliseDelimiter(options.delimiter, isTsv ? "\t" : ","));
		return { records: table.rows, columns: table.columns, format };
	}
	const records = format === "json" ? parseJsonRecords(text, filePath) : parseJsonLines(text, filePath);
	return { records, columns: columnsOf(records), format };
}

/**
 * A "json" file that is really JSON lines is common (and the extension says nothing), so a document that does
 * not parse as one value falls back to line-by-line reading.
 */
function parseJsonRecords(text: string, filePath: string): DataRecord[] {
	let document: unknown;
	try {
		document = JSON.parse(text);
	} catch {
		return parseJsonLines(text, filePath);
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

function parseJsonLines(text: string, filePath: string): DataRecord[] {
	const records: DataRecord[] = [];
	text.split(/\r?\n/).forEach((line, index) => {
		if (line.trim() === "") return;
		try {
			records.push(toRecord(JSON.parse(line)));
		} catch (err) {
			throw new StageInputError(`${filePath} line ${index + 1} is not valid JSON: ${(err as Error).message}`);
		}
	});
	return records;
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

/** Readers never see a half-written file: another stage may pick it up the moment this one reports. */
export async function writeFileAtomic(filePath: string, content: string): Promise<number> {
	await mkdir(path.dirname(filePath), { recursive: true });
	const temp = `${filePath}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
	try {
		await writeFile(temp, content, "utf8");
		await rename(temp, filePath);
	} catch (err) {
		await unlink(temp).catch(() => undefined);
		throw err;
	}
	return Buffer.byteLength(content, "utf8");
}

/**
 * Writes rows to a JSON file named after their content: a retried stage rewrites the same file and two runs over
 * different data never clobber each other.
 */
export async function spillRows(dir: string, prefix: string, rows: DataRecord[]): Promise<string> {
	const content = JSON.stringify(rows);
	const digest = createHash("sha256").update(content).digest("hex").slice(0, 12);
	const filePath = path.join(dir, `${prefix}.${digest}.json`);
	await writeFileAtomic(filePath, content);
	return toFileUrl(filePath);
}

export async function loadSpilledRows(location: string): Promise<DataRecord[]> {
	const filePath = toLocalPath(location, "records file");
	let document: unknown;
	try {
		document = JSON.parse(await readFile(filePath, "utf8"));
	} catch (err) {
		throw new Error(`cannot read records file ${filePath}: ${(err as Error).message}`);
	}
	if (!Array.isArray(document)) throw new StageInputError(`records file ${filePath} does not hold a JSON array`);
	return document.map(toRecord);
}
