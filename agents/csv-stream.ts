/**
 * CSV read as it streams in, through csv-parse's streaming parser: rows come out one at a time and only the row
 * being read is held. Same reading as agents/csv.ts: RFC 4180 quoting, a BOM and blank lines dropped, the first row
 * is the header (blank names become column_N, duplicates get a suffix), short rows are padded with "" and cells
 * beyond the header dropped; values stay strings.
 */
import { pipeline, type Readable } from "node:stream";
import { CsvError, parse } from "csv-parse";
import { uniqueNames } from "./csv";
import { StageInputError } from "./stage-error";

export interface CsvRecords {
	records: AsyncIterable<Record<string, string>>;
	/** The header's columns, known once the first row was read. */
	columns(): string[];
}

/** Names the problem and its line, never the text: csv-parse's own messages quote the file. */
function csvFailure(err: CsvError, location: string): StageInputError {
	if (err.code === "CSV_QUOTE_NOT_CLOSED") return new StageInputError(`CSV ${location} has an unterminated quoted field`);
	const line = typeof err.lines === "number" ? ` at line ${err.lines}` : "";
	return new StageInputError(`CSV ${location} cannot be read${line} (${err.code})`);
}

export function csvRecords(text: Readable, delimiter: string, location: string): CsvRecords {
	const parser = parse({
		delimiter,
		// Any line break ends a row, as in agents/csv.ts (csv-parse would otherwise keep to the first one it meets).
		record_delimiter: ["\r\n", "\n", "\r"],
		bom: true,
		relax_column_count: true,
		relax_quotes: true,
		skip_empty_lines: true
	});
	pipeline(text, parser, () => undefined);
	let columns: string[] = [];
	async function* records(): AsyncGenerator<Record<string, string>> {
		let header = true;
		try {
			for await (const cells of parser as AsyncIterable<string[]>) {
				if (header) {
					columns = uniqueNames(cells.map((name, index) => name.trim() || `column_${index + 1}`));
					header = false;
					continue;
				}
				const record: Record<string, string> = {};
				for (let i = 0; i < columns.length; i++) record[columns[i]] = cells[i] ?? "";
				yield record;
			}
		} catch (err) {
			throw err instanceof CsvError ? csvFailure(err, location) : err;
		} finally {
			parser.destroy();
		}
	}
	return { records: records(), columns: () => columns };
}
