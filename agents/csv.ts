/**
 * RFC 4180 CSV: quoted fields may hold delimiters, doubled quotes and line breaks. Values stay strings here;
 * typing them is the transformation stage's job, so ingestion reports the data exactly as it was read.
 */
import { StageInputError } from "./stage-error";

export interface CsvTable {
	columns: string[];
	rows: Record<string, string>[];
}

/** Accepts the forms people put in JSON config, where a literal tab is awkward to type. */
export function normaliseDelimiter(value: unknown, fallback: string): string {
	if (value === undefined || value === null || value === "") return fallback;
	if (typeof value !== "string") throw new StageInputError(`delimiter must be a string, got ${typeof value}`);
	if (value === "\\t" || value.toLowerCase() === "tab") return "\t";
	if (value.length !== 1) throw new StageInputError(`delimiter must be a single character, got ${JSON.stringify(value)}`);
	if (value === '"' || value === "\n" || value === "\r") throw new StageInputError(`delimiter ${JSON.stringify(value)} cannot be used`);
	return value;
}

/** Splits text into rows of raw fields; blank lines are dropped so a trailing newline adds no empty row. */
export function parseCsvRows(text: string, delimiter = ","): string[][] {
	const rows: string[][] = [];
	let row: string[] = [];
	let field = "";
	let quoted = false;
	// A row made only of one unquoted empty field is a blank line, not data.
	let rowHasContent = false;
	let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;

	const endField = (): void => {
		row.push(field);
		field = "";
	};
	const endRow = (): void => {
		endField();
		if (rowHasContent || row.length > 1) rows.push(row);
		row = [];
		rowHasContent = false;
	};

	for (; i < text.length; i++) {
		const ch = text[i];
		if (quoted) {
			if (ch === '"') {
				if (text[i + 1] === '"') {
					field += '"';
					i++;
				} else {
					quoted = false;
				}
			} else {
				field += ch;
			}
			continue;
		}
		if (ch === '"') {
			quoted = true;
			rowHasContent = true;
		} else if (ch === delimiter) {
			endField();
		} else if (ch === "\n" || ch === "\r") {
			if (ch === "\r" && text[i + 1] === "\n") i++;
			endRow();
		} else {
			field += ch;
			rowHasContent = true;
		}
	}
	if (quoted) throw new StageInputError("CSV has an unterminated quoted field");
	if (field !== "" || row.length > 0 || rowHasContent) endRow();
	return rows;
}

/**
 * First row is the header. Short rows are padded with "" (a trailing empty cell is often just not written);
 * cells beyond the header have no name to live under and are dropped.
 */
export function parseCsv(text: string, delimiter = ","): CsvTable {
	const [header, ...body] = parseCsvRows(text, delimiter);
	if (!header) return { columns: [], rows: [] };
	const columns = uniqueNames(header.map((name, index) => name.trim() || `column_${index + 1}`));
	const rows = body.map((cells) => {
		const record: Record<string, string> = {};
		columns.forEach((column, index) => {
			record[column] = cells[index] ?? "";
		});
		return record;
	});
	return { columns, rows };
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

function formatCell(value: unknown, delimiter: string): string {
	if (value === null || value === undefined) return "";
	const text = typeof value === "object" ? JSON.stringify(value) : String(value);
	const needsQuotes =
		text.includes(delimiter) || text.includes('"') || text.includes("\n") || text.includes("\r") || text.trim() !== text;
	return needsQuotes ? `"${text.replace(/"/g, '""')}"` : text;
}

export function formatCsv(records: Record<string, unknown>[], columns: string[], delimiter = ","): string {
	const lines = [columns.map((column) => formatCell(column, delimiter)).join(delimiter)];
	for (const record of records) lines.push(columns.map((column) => formatCell(record[column], delimiter)).join(delimiter));
	return lines.join("\n") + "\n";
}
