/**
 * Reference worker for the six pipeline stage types, working on local file:// CSV and JSON data so the default
 * pipeline runs end to end on one machine. No Moleculer here: the agent node wraps `executeStage`. What a stage is
 * given and what it returns, and how rows travel between stages, is the stage contract (src/stage-contract.ts).
 */
import os from "node:os";
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
	type StageContext,
	type StagePayload,
	type StageType,
	type TransformationResult,
	type UpstreamEntry,
	type ValidationIssue,
	type ValidationResult,
	type ValidationSummary
} from "../src/stage-contract";
import { formatCsv, uniqueNames } from "./csv";
import {
	columnsOf,
	isPlainObject,
	loadSpilledRows,
	readDataFile,
	spillRows,
	toFileUrl,
	toLocalPath,
	writeFileAtomic
} from "./data-files";
import { checkRecord, inferSchema, parseSchema } from "./record-schema";
import { StageInputError } from "./stage-error";
import { cleanRecords, cleanValue, stringArray, toSnakeCase } from "./values";
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

export type ProgressReporter = (progress: number, message?: string) => void;

export const DEFAULT_MAX_INLINE_RECORDS = 1000;
const MAX_REPORTED_ERRORS = 100;
const DEFAULT_MAX_CATEGORIES = 20;

/** A dependency's status goes unread: only a completed one carries a result, and the result is what counts. */
type Dependency = Omit<UpstreamEntry, "status">;

interface StageRun {
	type: StageType;
	payload: StagePayload;
	inputData: Record<string, unknown>;
	params: Record<string, unknown>;
	/** Highest index first: the nearest dependency wins ties. */
	upstream: Dependency[];
	stageName: string;
	progress: (fraction: number, message: string) => void;
}

interface RecordSet {
	records: DataRecord[];
	columns: string[];
	/** Straight from a file or ingestion: values are still the strings that were read. */
	raw: boolean;
}

export async function executeStage(
	type: string,
	payload: StagePayload,
	report?: ProgressReporter
): Promise<unknown> {
	if (!isStageType(type)) {
		throw new StageInputError(`unsupported stage type ${JSON.stringify(type)} (expected one of ${STAGE_TYPES.join(", ")})`);
	}
	const run = prepare(type, isPlainObject(payload) ? payload : {}, report);
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

function prepare(type: StageType, payload: StagePayload, report?: ProgressReporter): StageRun {
	const upstream: Dependency[] = [];
	if (isPlainObject(payload.upstream)) {
		for (const [name, entry] of Object.entries(payload.upstream)) {
			if (!isPlainObject(entry)) continue;
			upstream.push({
				index: typeof entry.index === "number" ? entry.index : -1,
				// An entry without a type is taken to be named after its stage type, as in the default pipeline.
				type: typeof entry.type === "string" ? entry.type : name,
				result: entry.result
			});
		}
	}
	upstream.sort((a, b) => b.index - a.index);
	const stage: Record<string, unknown> = isPlainObject(payload.stage) ? payload.stage : {};
	return {
		type,
		payload,
		inputData: isPlainObject(payload.input_data) ? payload.input_data : {},
		params: isPlainObject(payload.parameters) ? payload.parameters : {},
		upstream,
		stageName: typeof stage.name === "string" && stage.name.trim() !== "" ? stage.name : type,
		progress: (fraction, message) => {
			if (!report) return;
			// Progress is advisory: a failing reporter must not fail the work itself.
			try {
				const returned: unknown = report(Math.min(1, Math.max(0, fraction)), message);
				if (returned instanceof Promise) returned.catch(() => undefined);
			} catch {
				// ignored on purpose, see above
			}
		}
	};
}

// ---------- where data comes from and goes to ----------

function firstString(...values: unknown[]): string | undefined {
	for (const value of values) if (typeof value === "string" && value.trim() !== "") return value.trim();
	return undefined;
}

function sourceLocation(run: StageRun): string | undefined {
	return firstString(run.payload.data_source, run.params.data_source, run.inputData.source, run.inputData.data_source);
}

function inlineRecords(run: StageRun): DataRecord[] | undefined {
	const rows = Array.isArray(run.payload.records) ? run.payload.records : run.inputData.records;
	return Array.isArray(rows) ? rows.filter(isPlainObject) : undefined;
}

/** Explicit output location, else `<input-basename>.output.json` next to the input. */
function outputPath(run: StageRun, source: string | undefined): string | undefined {
	const explicit = firstString(run.params.output, run.inputData.output, run.payload.output);
	if (explicit) return toLocalPath(explicit, "output");
	if (!source) return undefined;
	const input = toLocalPath(source);
	return path.join(path.dirname(input), `${path.basename(input, path.extname(input))}.output.json`);
}

function maxInline(run: StageRun): number {
	const limit = run.params.max_inline_records;
	return typeof limit === "number" && Number.isInteger(limit) && limit >= 0 ? limit : DEFAULT_MAX_INLINE_RECORDS;
}

/** Inline when small; otherwise a file beside the eventual output, so a run's files stay together. */
async function packRows(
	run: StageRun,
	context: StageContext,
	rows: DataRecord[],
	key: "records" | "groups"
): Promise<Record<string, DataRecord[] | string>> {
	if (rows.length <= maxInline(run)) return { [key]: rows };
	const out = outputPath(run, context.source);
	const dir = out ? path.dirname(out) : os.tmpdir();
	const base = out ? path.basename(out, path.extname(out)).replace(/\.output$/, "") : "mcp-stage";
	const slug = run.stageName.replace(/[^A-Za-z0-9_-]+/g, "-");
	return { [`${key}_file`]: await spillRows(dir, `${base}.${slug}.${key}`, rows) };
}

function hasRows(result: unknown, key: "records" | "groups"): result is Record<string, unknown> {
	return isPlainObject(result) && (Array.isArray(result[key]) || typeof result[`${key}_file`] === "string");
}

async function loadRows(result: Record<string, unknown>, key: "records" | "groups"): Promise<DataRecord[]> {
	const inline = result[key];
	if (Array.isArray(inline)) return inline.filter(isPlainObject);
	return loadSpilledRows(String(result[`${key}_file`]));
}

/**
 * Rows for a stage: from the upstream whose type comes first in `preferred` (nearest index on ties), else rows
 * in the payload, else the data source read directly, which lets any stage run as a standalone task.
 */
async function obtainRecords(run: StageRun, preferred: StageType[]): Promise<RecordSet | undefined> {
	const rank = (entry: Dependency): number => {
		const at = (preferred as string[]).indexOf(entry.type);
		return at === -1 ? preferred.length : at;
	};
	const candidates = run.upstream.filter((entry) => hasRows(entry.result, "records"));
	candidates.sort((a, b) => rank(a) - rank(b) || b.index - a.index);
	const chosen = candidates[0];
	if (chosen && isPlainObject(chosen.result)) {
		const records = await loadRows(chosen.result, "records");
		const columns = stringArray(chosen.result.columns) ?? columnsOf(records);
		return { records, columns, raw: chosen.type === "data-ingestion" };
	}
	const inline = inlineRecords(run);
	if (inline) return { records: inline, columns: columnsOf(inline), raw: true };
	const location = sourceLocation(run);
	if (location) {
		const data = await readDataFile(toLocalPath(location), readOptions(run));
		return { records: data.records, columns: data.columns, raw: true };
	}
	return undefined;
}

async function requireRecords(run: StageRun, preferred: StageType[]): Promise<RecordSet> {
	const set = await obtainRecords(run, preferred);
	if (!set) {
		throw new StageInputError(
			`${run.type}: no input records: expected an upstream ${preferred[0]} result, payload records, ` +
				"or a data source (data_source / input_data.source)"
		);
	}
	return set;
}

function readOptions(run: StageRun): { format?: unknown; delimiter?: unknown } {
	return {
		format: run.params.format ?? run.inputData.format ?? run.payload.format,
		delimiter: run.params.delimiter ?? run.inputData.delimiter ?? run.payload.delimiter
	};
}

/** Merges what the dependencies forwarded; a direct analysis or validation result is fresher than a forwarded one. */
function gatherContext(run: StageRun): StageContext {
	const context: StageContext = {};
	const oldestFirst = [...run.upstream].reverse();
	for (const entry of oldestFirst) {
		const result = entry.result;
		if (!isPlainObject(result)) continue;
		if (isPlainObject(result.context)) Object.assign(context, result.context);
		if (typeof result.source === "string" && entry.type === "data-ingestion") context.source = result.source;
	}
	for (const entry of oldestFirst) {
		const result = entry.result;
		if (!isPlainObject(result)) continue;
		if (entry.type === "analysis" && isPlainObject(result.statistics)) {
			context.analysis = {
				count: typeof result.count === "number" ? result.count : 0,
				statistics: result.statistics as Record<string, NumericSummary>,
				groups: isPlainObject(result.groups) ? (result.groups as Record<string, Record<string, number>>) : {}
			};
		}
		if (entry.type === "validation" && typeof result.valid === "number" && typeof result.invalid === "number") {
			context.validation = {
				valid: result.valid,
				invalid: result.invalid,
				error_count: typeof result.error_count === "number" ? result.error_count : result.invalid,
				errors: Array.isArray(result.errors) ? (result.errors as ValidationIssue[]) : []
			};
		}
	}
	if (!context.source) {
		const location = sourceLocation(run);
		// Only a local source can anchor default output paths; a remote one was already refused by ingestion.
		if (location) {
			try {
				context.source = toFileUrl(toLocalPath(location));
			} catch {
				// leave unset
			}
		}
	}
	return context;
}

function columnList(value: unknown, what: string): string[] | undefined {
	if (value === undefined || value === null || value === "") return undefined;
	const list =
		typeof value === "string"
			? value.split(",").map((v) => v.trim()).filter((v) => v !== "")
			: stringArray(value);
	if (!list) throw new StageInputError(`${what} must be a column name or a list of column names`);
	return list;
}

function requireKnownColumns(list: string[], columns: string[], what: string): void {
	const unknown = list.filter((column) => !columns.includes(column));
	if (unknown.length > 0) {
		throw new StageInputError(`${what} names unknown column(s) ${unknown.join(", ")} (available: ${columns.join(", ")})`);
	}
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
	const records = input.raw ? cleanRecords(input.records) : input.records;
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
	const records = input.raw ? cleanRecords(input.records) : input.records;
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
	const records = input.raw ? cleanRecords(input.records) : input.records;
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
	const records = plain ? (plain.raw ? cleanRecords(plain.records) : plain.records) : undefined;
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
