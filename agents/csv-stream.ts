/**
 * CSV read as it streams in, through csv-parse's streaming parser with the options of agents/csv.ts: rows come
 * out one at a time and only the row being read is held. The first row is the header (agents/csv.ts names its
 * columns); each later row becomes a record under those names.
 */
import { pipeline, type Readable } from "node:stream";
import { CsvError, parse } from "csv-parse";
import { csvFailure, csvParseOptions, headerColumns, recordOf, type CsvPosition } from "./csv";

export interface CsvRecords {
	records: AsyncIterable<Record<string, string>>;
	/** The header's columns, known once the first row was read. */
	columns(): string[];
}

export function csvRecords(text: Readable, delimiter: string, location: string): CsvRecords {
	// Where the last whole record ended, for an error that must name its line.
	const last: CsvPosition = { lines: 0, emptyLines: 0 };
	const parser = parse({
		...csvParseOptions(delimiter),
		on_record: (record, context) => {
			last.lines = context.lines;
			last.emptyLines = context.empty_lines;
			return record;
		}
	});
	pipeline(text, parser, () => undefined);
	let columns: string[] = [];
	async function* records(): AsyncGenerator<Record<string, string>> {
		let header = true;
		try {
			for await (const cells of parser as AsyncIterable<string[]>) {
				if (header) {
					columns = headerColumns(cells);
					header = false;
					continue;
				}
				yield recordOf(columns, cells);
			}
		} catch (err) {
			throw err instanceof CsvError ? csvFailure(err, location, last) : err;
		} finally {
			parser.destroy();
		}
	}
	return { records: records(), columns: () => columns };
}
