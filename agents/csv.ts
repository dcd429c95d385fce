/**
 * CSV as the reference agent reads and writes it, through csv-parse and csv-stringify: the options both use are
 * here and nowhere else, with the reading of a header into column names (agents/csv-stream.ts reads, the output
 * stage writes).
 *
 * Reading: RFC 4180 quoting (delimiters, doubled quotes and line breaks inside quotes), any of CRLF, LF or CR
 * ends a row, a BOM and blank lines are dropped, rows may be shorter or longer than the header, and a quote
 * inside an unquoted field is kept as a character (as Python's csv module does). Values stay strings;
 * typing them is the transformation stage's job, so ingestion reports the data exactly as it was read.
 *
 * Writing: a header line, then one line per record, LF line ends; a cell is quoted when it holds the delimiter,
 * a quote, a line break, or leading or trailing white space (which a reader that trims would lose); null and
 * missing values are empty cells, booleans `true`/`false`, objects and arrays their JSON.
 */
import type { CsvError, Options as ParseOptions } from "csv-parse";
import type { Options as StringifyOptions } from "csv-stringify";
import { stringify } from "csv-stringify/sync";
import { StageInputError } from "./stage-error";

/** Accepts the forms people put in JSON config, where a literal tab is awkward to type. */
export function normaliseDelimiter(value: unknown, fallback: string): string {
	if (value === undefined || value === null || value === "") return fallback;
	if (typeof value !== "string") throw new StageInputError(`delimiter must be a string, got ${typeof value}`);
	if (value === "\\t" || value.toLowerCase() === "tab") return "\t";
	if (value.length !== 1) throw new StageInputError(`delimiter must be a single character, got ${JSON.stringify(value)}`);
	if (value === '"' || value === "\n" || value === "\r") throw new StageInputError(`delimiter ${JSON.stringify(value)} cannot be used`);
	return value;
}

/** csv-parse's options for every CSV the agent reads. */
export function csvParseOptions(delimiter: string): ParseOptions {
	return {
		delimiter,
		// Any line break ends a row (csv-parse would otherwise keep to the first kind it meets).
		record_delimiter: ["\r\n", "\n", "\r"],
		bom: true,
		relax_column_count: true,
		relax_quotes: true,
		skip_empty_lines: true
	};
}

/** Where the reader was when csv-parse gave up: the last record it read whole (csv-parse's own counts). */
export interface CsvPosition {
	/** The line the last whole record ended on, 0 before the first. */
	lines: number;
	/** Blank lines skipped up to then. */
	emptyLines: number;
}

/** Names the problem and its line, never the text: csv-parse's own messages quote the file. */
export function csvFailure(err: CsvError, location: string, last: CsvPosition): StageInputError {
	if (err.code === "CSV_QUOTE_NOT_CLOSED") {
		// The open record begins on the line after the last whole one, past the blank lines skipped since.
		const start = last.lines + 1 + Math.max(0, Number(err.empty_lines ?? 0) - last.emptyLines);
		return new StageInputError(`CSV ${location} has an unterminated quoted field in the record starting on line ${start}`);
	}
	const line = typeof err.lines === "number" ? ` at line ${err.lines}` : "";
	return new StageInputError(`CSV ${location} cannot be read${line} (${err.code})`);
}

/** The header row as column names: trimmed, a blank one is column_N, a repeated one gets a suffix. */
export function headerColumns(cells: string[]): string[] {
	return uniqueNames(cells.map((name, index) => name.trim() || `column_${index + 1}`));
}

/** A row under the header's names: a missing cell is "", a cell beyond the header has no name to live under and is dropped. */
export function recordOf(columns: string[], cells: string[]): Record<string, string> {
	const record: Record<string, string> = {};
	for (let i = 0; i < columns.length; i++) record[columns[i]] = cells[i] ?? "";
	return record;
}

/** Duplicate header names would silently overwrite each other in a record, so later ones get a suffix. */
export function uniqueNames(names: string[]): string[] {
	const seen = new Set<string>();
	return names.map((name) => {
		let candidate = name;
		for (let n = 2; seen.has(candidate); n++) candidate = `${name}_${n}`;
		seen.add(candidate);
		return candidate;
	});
}

/** csv-stringify's options for every CSV the agent writes. */
export function csvStringifyOptions(delimiter: string): StringifyOptions {
	return {
		delimiter,
		record_delimiter: "\n",
		// A given record_delimiter would otherwise make CR alone no reason to quote.
		quote_record_delimiter: true,
		quoted_match: /^\s|\s$/,
		cast: {
			boolean: (value) => String(value),
			date: (value) => value.toISOString(),
			object: (value) => JSON.stringify(value)
		}
	};
}

/**
 * Rows are written as arrays of cells, in the columns' order: csv-stringify would read an object's column
 * "a.b" as the path a → b, and column names here are whatever the data's header said.
 */
function stringifyRows(rows: unknown[][], delimiter: string): string {
	return rows.length === 0 ? "" : stringify(rows, csvStringifyOptions(delimiter));
}

export function formatCsvHeader(columns: string[], delimiter = ","): string {
	return stringifyRows([columns], delimiter);
}

/** The records' lines, without the header (for writing a table a batch at a time). */
export function formatCsvRows(records: Record<string, unknown>[], columns: string[], delimiter = ","): string {
	return stringifyRows(records.map((record) => columns.map((column) => record[column])), delimiter);
}

export function formatCsv(records: Record<string, unknown>[], columns: string[], delimiter = ","): string {
	return formatCsvHeader(columns, delimiter) + formatCsvRows(records, columns, delimiter);
}
