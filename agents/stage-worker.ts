/**
 * Reference worker for the six pipeline stage types, working on local file:// CSV and JSON data so the default
 * pipeline runs end to end on one machine. No Moleculer here: the agent node wraps `executeStage`. What a stage is
 * given and what it returns, and how rows travel between stages, is the stage contract (src/stage-contract.ts).
 */
import path from "node:path";
import {
	STAGE_TYPES,
	type AnalysisResult,
	type AnalysisSummary,
	type DataRecord,
	type IngestionResult,
	type NumericSummary,
	type OutputResult,
	type ProcessingResult,
	type StagePayload,
	type StageType,
	type TransformationResult,
	type ValidationIssue,
	type ValidationResult,
	type ValidationSummary
} from "../src/stage-contract";
import { formatCsv, uniqueNames } from "./csv";
import {
	columnsOf,
	isPlainObject,
	readDataFile,
	toFileUrl,
	toLocalPath,
	writeFileAtomic
} from "./data-files";
import { checkRecord, inferSchema, parseSchema } from "./record-schema";
import { StageInputError } from "./stage-error";
import {
	columnList,
	gatherContext,
	hasRows,
	inlineRecords,
	loadRows,
	obtainRecords,
	outputPath,
	packRows,
	prepareRun,
	readOptions,
	requireKnownColumns,
	requireRecords,
	sourceLocation,
	typedRecords,
	type ProgressReporter,
	type StageRun
} from "./stage-input";
import { cleanValue, stringArray, toSnakeCase } from "./values";
import {
	isCategorical,
	isIdentifierColumn,
	isMissing,
	isNumber,
	numericValues,
	profileColumns,
	roundNumber,
	summarise,
	valueCounts
} from "./statistics";

export { StageInputError } from "./stage-error";
export { cleanValue, toSnakeCase } from "./values";
export type { ProgressReporter } from "./stage-input";

const MAX_REPORTED_ERRORS = 100;
const DEFAULT_MAX_CATEGORIES = 20;

export async function executeStage(
	type: string,
	payload: StagePayload,
	report?: ProgressReporter
): Promise<unknown> {
	if (!isStageType(type)) {
		throw new StageInputError(`unsupported stage type ${JSON.stringify(type)} (expected one of ${STAGE_TYPES.join(", ")})`);
	}
	const run = prepareRun(type, isPlainObject(payload) ? payload : {}, report);
	switch (type) {
		case "data-ingestion":
			return ingest(run);
		case "transformation":
			return transform(run);
		case "analysis":
			return analyse(run);
		case "validation":
			return validate(run);
		case "processing":
			return processRecords(run);
		case "output":
			return writeOutput(run);
	}
}

function isStageType(type: string): type is StageType {
	return (STAGE_TYPES as readonly string[]).includes(type);
}

// ---------- stages ----------

async function ingest(run: StageRun): Promise<IngestionResult> {
	const location = sourceLocation(run);
	if (!location) {
		const inline = inlineRecords(run);
		if (!inline) {
			throw new StageInputError("data-ingestion needs a data source: payload.data_source or input_data.source (file:// URL or path)");
		}
		const packed = await packRows(run, {}, inline, "records");
		return { source: "inline", format: "json", count: inline.length, columns: columnsOf(inline), ...packed };
	}
	const filePath = toLocalPath(location);
	run.progress(0.1, `reading ${filePath}`);
	const data = await readDataFile(filePath, readOptions(run));
	run.progress(0.7, `read ${data.records.length} records (${data.format})`);
	const source = toFileUrl(filePath);
	const packed = await packRows(run, { source }, data.records, "records");
	run.progress(0.95, "ingestion done");
	return { source, format: data.format, count: data.records.length, columns: data.columns, ...packed };
}

async function transform(run: StageRun): Promise<TransformationResult> {
	const input = await requireRecords(run, ["data-ingestion"]);
	const context = gatherContext(run);
	run.progress(0.2, `transforming ${input.records.length} records`);

	const rename = isPlainObject(run.params.rename) ? run.params.rename : {};
	const targets = uniqueNames(
		input.columns.map((original) => {
			const snake = toSnakeCase(original);
			// Rename keys may be written against the file's header or the normalised name; both are natural.
			const renamed = rename[original] ?? rename[snake];
			return typeof renamed === "string" && renamed.trim() !== "" ? renamed.trim() : snake;
		})
	);
	let records = input.records.map((record) => {
		const out: DataRecord = {};
		input.columns.forEach((original, index) => {
			out[targets[index]] = cleanValue(record[original]);
		});
		return out;
	});
	let columns = [...targets];
	run.progress(0.5, "columns normalised and values typed");

	// Keep a `total` that came with the data: it may include discounts or tax the product would not.
	if (columns.includes("quantity") && columns.includes("unit_price") && !columns.includes("total")) {
		for (const record of records) {
			const { quantity, unit_price: price } = record;
			record.total = isNumber(quantity) && isNumber(price) ? roundNumber(quantity * price) : null;
		}
		columns.push("total");
	}

	const select = columnList(run.params.select, "parameters.select");
	if (select) {
		requireKnownColumns(select, columns, "parameters.select");
		records = records.map((record) => Object.fromEntries(select.map((column) => [column, record[column]])));
		columns = select;
	}
	const packed = await packRows(run, context, records, "records");
	run.progress(0.95, "transformation done");
	return { count: records.length, columns, ...packed, context };
}

async function analyse(run: StageRun): Promise<AnalysisResult> {
	const input = await requireRecords(run, ["transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	run.progress(0.2, `analysing ${records.length} records`);

	const maxCategories = typeof run.params.max_categories === "number" ? run.params.max_categories : DEFAULT_MAX_CATEGORIES;
	const statistics: Record<string, NumericSummary> = {};
	const groups: Record<string, Record<string, number>> = {};
	for (const profile of profileColumns(records, input.columns)) {
		if (profile.kind === "number" && !isIdentifierColumn(profile.name)) {
			const values = numericValues(records, profile.name);
			const summary = summarise(values, records.length - values.length);
			if (summary) statistics[profile.name] = summary;
		} else if (isCategorical(profile, records.length, maxCategories)) {
			groups[profile.name] = valueCounts(records, profile.name);
		}
	}
	run.progress(0.8, `${Object.keys(statistics).length} numeric and ${Object.keys(groups).length} categorical columns`);

	const analysis: AnalysisSummary = { count: records.length, statistics, groups };
	const ownContext = { ...context, analysis };
	// Rows pass through for validation, which may not depend on transformation directly.
	const packed = await packRows(run, ownContext, records, "records");
	return { ...analysis, columns: input.columns, ...packed, context: ownContext };
}

async function validate(run: StageRun): Promise<ValidationResult> {
	const input = await requireRecords(run, ["analysis", "transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	const fromParameters = run.params.schema !== undefined && run.params.schema !== null;
	const schema = fromParameters ? parseSchema(run.params.schema) : inferSchema(records, input.columns);
	run.progress(0.2, `validating ${records.length} records against ${fromParameters ? "the given" : "an inferred"} schema`);

	const valid: DataRecord[] = [];
	const errors: ValidationIssue[] = [];
	let errorCount = 0;
	records.forEach((record, index) => {
		const problems = checkRecord(record, schema);
		if (problems.length === 0) {
			valid.push(record);
			return;
		}
		errorCount += problems.length;
		for (const problem of problems) {
			if (errors.length < MAX_REPORTED_ERRORS) errors.push({ row: index + 1, ...problem });
		}
	});
	const invalid = records.length - valid.length;
	run.progress(0.8, `${valid.length} valid, ${invalid} invalid`);

	const failOnInvalid = run.params.fail_on_invalid === true || run.params.fail_on_invalid === "true";
	if (failOnInvalid && invalid > 0) {
		const first = errors[0];
		throw new StageInputError(
			`validation failed: ${invalid} of ${records.length} records invalid` +
				(first ? ` (first: row ${first.row} ${first.field} ${first.message})` : "")
		);
	}
	const validation: ValidationSummary = { valid: valid.length, invalid, error_count: errorCount, errors };
	const ownContext = { ...context, validation };
	const packed = await packRows(run, ownContext, valid, "records");
	return {
		...validation,
		count: valid.length,
		columns: input.columns,
		schema,
		schema_source: fromParameters ? "parameters" : "inferred",
		...packed,
		context: ownContext
	};
}

async function processRecords(run: StageRun): Promise<ProcessingResult> {
	const input = await requireRecords(run, ["validation", "analysis", "transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	const profiles = profileColumns(records, input.columns);

	let groupBy = columnList(run.params.group_by, "parameters.group_by");
	if (groupBy) requireKnownColumns(groupBy, input.columns, "parameters.group_by");
	else {
		// Prefer a real category (region) over the first text column, which may be near-unique (a name or date).
		const category = profiles.find((p) => p.kind === "string" && isCategorical(p, records.length, Number.POSITIVE_INFINITY));
		const text = profiles.find((p) => p.kind === "string");
		const chosen = category ?? text;
		groupBy = chosen ? [chosen.name] : [];
	}
	const grouping = groupBy;
	let sum = columnList(run.params.sum, "parameters.sum");
	if (sum) requireKnownColumns(sum, input.columns, "parameters.sum");
	else sum = profiles.filter((p) => p.kind === "number" && !isIdentifierColumn(p.name) && !grouping.includes(p.name)).map((p) => p.name);
	const summed = sum.filter((column) => !grouping.includes(column));
	// The row counter is called `count`; a data column of that name keeps its sum under another name.
	const sumName = (column: string): string => (column === "count" ? "count_sum" : column);
	run.progress(0.2, `aggregating ${records.length} records by ${grouping.length > 0 ? grouping.join(", ") : "(all)"}`);

	const buckets = new Map<string, { keys: unknown[]; count: number; sums: number[] }>();
	for (const record of records) {
		const keys = grouping.map((column) => (isMissing(record[column]) ? null : record[column]));
		const id = JSON.stringify(keys);
		let bucket = buckets.get(id);
		if (!bucket) {
			bucket = { keys, count: 0, sums: summed.map(() => 0) };
			buckets.set(id, bucket);
		}
		bucket.count++;
		summed.forEach((column, index) => {
			const value = record[column];
			if (isNumber(value) && bucket) bucket.sums[index] += value;
		});
	}
	const groups = [...buckets.values()]
		.sort((a, b) => compareKeys(a.keys, b.keys))
		.map((bucket) => {
			const row: DataRecord = {};
			grouping.forEach((column, index) => {
				row[column] = bucket.keys[index];
			});
			row.count = bucket.count;
			summed.forEach((column, index) => {
				row[sumName(column)] = roundNumber(bucket.sums[index]);
			});
			return row;
		});
	run.progress(0.8, `${groups.length} groups`);
	const packed = await packRows(run, context, groups, "groups");
	return {
		group_by: grouping,
		sum: summed,
		count: groups.length,
		record_count: records.length,
		columns: [...grouping, "count", ...summed.map(sumName)],
		...packed,
		context
	};
}

function compareKeys(a: unknown[], b: unknown[]): number {
	for (let i = 0; i < a.length; i++) {
		const x = a[i];
		const y = b[i];
		if (x === y) continue;
		// Missing keys sort last so the named groups lead the report.
		if (x === null) return 1;
		if (y === null) return -1;
		if (isNumber(x) && isNumber(y)) return x - y;
		const order = String(x).localeCompare(String(y));
		if (order !== 0) return order;
	}
	return 0;
}

async function writeOutput(run: StageRun): Promise<OutputResult> {
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
		groups = await loadRows(processing.result, "groups");
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
	const bytes = await writeFileAtomic(target, content);
	run.progress(0.95, `wrote ${bytes} bytes`);
	return { output: toFileUrl(target), format, bytes, records: table.length };
}
