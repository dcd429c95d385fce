import type { IngestionResult } from "../../src/stage-contract";
import { columnsOf, openRecords } from "../data-files";
import { StageInputError } from "../stage-error";
import { packRecordStream, packRows } from "../spill";
import { inlineRecords, readOptions, sourceLocation, type StageRun } from "../stage-input";

/** Streams the source into the result: the rows themselves when few, else a spill file written as they are read. */
export async function ingest(run: StageRun): Promise<IngestionResult> {
	const location = sourceLocation(run);
	if (!location) {
		const inline = inlineRecords(run);
		if (!inline) {
			throw new StageInputError("data-ingestion needs a data source: payload.data_source or input_data.source (a path, file:// or s3:// URL)");
		}
		const packed = await packRows(run, {}, inline, "records");
		return { source: "inline", format: "json", count: inline.length, columns: columnsOf(inline), ...packed };
	}
	const source = run.locations.resolve(location, "data source");
	run.progress(0.1, `reading ${source.href}`);
	const stream = await openRecords(source, "data source", readOptions(run));
	const { packed, count } = await packRecordStream(run, source, stream);
	run.progress(0.95, `read ${count} records (${stream.format})`);
	return { source: source.href, format: stream.format, count, columns: stream.columns(), ...packed };
}
