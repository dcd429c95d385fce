import path from "node:path";
import type { DataRecord, OutputResult } from "../../src/stage-contract";
import { formatCsvHeader, formatCsvRows } from "../csv";
import { columnsOf, isPlainObject } from "../data-files";
import { StageInputError } from "../stage-error";
import { gatherContext, hasRows, loadRows, obtainRecords, outputLocation, typedRecords, type StageRun } from "../stage-input";
import { stringArray } from "../values";

export async function writeOutput(run: StageRun): Promise<OutputResult> {
	const context = gatherContext(run);
	const target = outputLocation(run, context.source);
	if (!target) {
		throw new StageInputError("output needs a destination: parameters.output or input_data.output (or an input source to write next to)");
	}

	const processing = run.upstream.find((entry) => entry.type === "processing" && hasRows(entry.result, "groups"));
	let groups: DataRecord[] | undefined;
	let groupColumns: string[] | undefined;
	let groupBy: string[] | undefined;
	if (processing && isPlainObject(processing.result)) {
		groups = await loadRows(run, processing.result, "groups");
		groupColumns = stringArray(processing.result.columns);
		groupBy = stringArray(processing.result.group_by);
	}
	// Without a processing stage the records themselves are the final result.
	const plain = groups ? undefined : await obtainRecords(run, ["validation", "analysis", "transformation", "data-ingestion"]);
	if (!groups && !plain && !context.analysis && !context.validation) {
		throw new StageInputError("output: nothing to write: no upstream results, payload records or data source");
	}
	const records = plain ? typedRecords(plain) : undefined;
	const table = groups ?? records ?? [];
	run.progress(0.3, `writing ${table.length} rows to ${target.href}`);

	const ext = path.extname(target.basename).toLowerCase();
	const format: OutputResult["format"] = ext === ".csv" ? "csv" : ext === ".jsonl" || ext === ".ndjson" ? "jsonl" : "json";
	let content: AsyncIterable<string>;
	if (format === "csv") {
		content = csvText(table, groupColumns ?? plain?.columns ?? columnsOf(table));
	} else if (format === "jsonl") {
		content = batched(table, (row) => `${JSON.stringify(row)}\n`);
	} else {
		const document: Record<string, unknown> = {
			generated_at: new Date().toISOString(),
			source: context.source ?? null,
			stage: run.stageName
		};
		if (groups) document.processing = { group_by: groupBy ?? [], count: groups.length, groups };
		if (context.analysis) document.analysis = context.analysis;
		if (context.validation) document.validation = context.validation;
		if (records) document.count = records.length;
		content = jsonDocumentText(document, records);
	}
	const written = await target.write("output", content);
	run.progress(0.95, `wrote ${written.bytes} bytes${written.parts > 1 ? ` in ${written.parts} parts` : ""}`);
	return { output: target.href, format, bytes: written.bytes, records: table.length };
}

const BATCH = 1000;

/** The table's text a batch of rows at a time: the output goes out in chunks, never as one string. */
async function* batched(rows: DataRecord[], line: (row: DataRecord) => string): AsyncGenerator<string> {
	for (let at = 0; at < rows.length; at += BATCH) yield rows.slice(at, at + BATCH).map(line).join("");
}

async function* csvText(rows: DataRecord[], columns: string[]): AsyncGenerator<string> {
	yield formatCsvHeader(columns);
	for (let at = 0; at < rows.length; at += BATCH) yield formatCsvRows(rows.slice(at, at + BATCH), columns);
}

/** The document as JSON.stringify(…, null, 2) lays it out, with `records` (one compact row a line) streamed last. */
async function* jsonDocumentText(document: Record<string, unknown>, records: DataRecord[] | undefined): AsyncGenerator<string> {
	const head = JSON.stringify(document, null, 2);
	if (!records) {
		yield `${head}\n`;
		return;
	}
	yield `${head.slice(0, -2)},\n  "records": [`;
	for (let at = 0; at < records.length; at += BATCH) {
		const rows = records.slice(at, at + BATCH).map((row) => `\n    ${JSON.stringify(row)}`);
		yield (at === 0 ? "" : ",") + rows.join(",");
	}
	yield records.length > 0 ? "\n  ]\n}\n" : "]\n}\n";
}
