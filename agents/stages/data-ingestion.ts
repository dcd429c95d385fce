import type { IngestionResult } from "../../src/stage-contract";
import { columnsOf, readDataFile, toFileUrl } from "../data-files";
import { StageInputError } from "../stage-error";
import { inlineRecords, packRows, readOptions, sourceLocation, type StageRun } from "../stage-input";

export async function ingest(run: StageRun): Promise<IngestionResult> {
	const location = sourceLocation(run);
	if (!location) {
		const inline = inlineRecords(run);
		if (!inline) {
			throw new StageInputError("data-ingestion needs a data source: payload.data_source or input_data.source (file:// URL or path)");
		}
		const packed = await packRows(run, {}, inline, "records");
		return { source: "inline", format: "json", count: inline.length, columns: columnsOf(inline), ...packed };
	}
	const filePath = run.root.locate(location, "data source");
	run.progress(0.1, `reading ${filePath}`);
	const data = await readDataFile(run.root, location, readOptions(run));
	run.progress(0.7, `read ${data.records.length} records (${data.format})`);
	const source = toFileUrl(filePath);
	const packed = await packRows(run, { source }, data.records, "records");
	run.progress(0.95, "ingestion done");
	return { source, format: data.format, count: data.records.length, columns: data.columns, ...packed };
}
