import path from "node:path";
import type { DataRecord, OutputResult } from "../../src/stage-contract";
import { formatCsv } from "../csv";
import { columnsOf, isPlainObject, toFileUrl } from "../data-files";
import { StageInputError } from "../stage-error";
import { gatherContext, hasRows, loadRows, obtainRecords, outputPath, typedRecords, type StageRun } from "../stage-input";
import { stringArray } from "../values";

export async function writeOutput(run: StageRun): Promise<OutputResult> {
	const context = gatherContext(run);
	const target = outputPath(run, context.source);
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
	run.progress(0.3, `writing ${table.length} rows to ${target}`);

	const ext = path.extname(target).toLowerCase();
	const format: OutputResult["format"] = ext === ".csv" ? "csv" : ext === ".jsonl" || ext === ".ndjson" ? "jsonl" : "json";
	let content: string;
	if (format === "csv") {
		content = formatCsv(table, groupColumns ?? plain?.columns ?? columnsOf(table));
	} else if (format === "jsonl") {
		content = table.map((row) => JSON.stringify(row)).join("\n") + (table.length > 0 ? "\n" : "");
	} else {
		const document: Record<string, unknown> = {
			generated_at: new Date().toISOString(),
			source: context.source ?? null,
			stage: run.stageName
		};
		if (groups) document.processing = { group_by: groupBy ?? [], count: groups.length, groups };
		if (context.analysis) document.analysis = context.analysis;
		if (context.validation) document.validation = context.validation;
		if (records) {
			document.count = records.length;
			document.records = records;
		}
		content = JSON.stringify(document, null, 2) + "\n";
	}
	await run.root.writeText(target, "output", content);
	const bytes = Buffer.byteLength(content, "utf8");
	run.progress(0.95, `wrote ${bytes} bytes`);
	return { output: toFileUrl(target), format, bytes, records: table.length };
}
