/**
 * The engine↔worker contract for pipeline stages, written once for both sides: the stage types, the payload the
 * pipeline engine gives each stage's task, and the result every stage type returns. Types and the stage list only,
 * no I/O and no Moleculer, so the engine (src/domain) and any worker (agents/) can share it.
 *
 * Rows travel inline as `records` (or `groups`) up to `parameters.max_inline_records` (default 1000); beyond that
 * they are written to a JSON file next to the output and passed as `records_file` (or `groups_file`): a file:// URL,
 * or an s3:// one when the output is on S3 (so a stage on another host can read it).
 * The engine may hand a stage only its direct dependencies, so analysis and validation pass the rows through and
 * every stage forwards a small `context` (source, analysis and validation summaries) for the output stage.
 */
// Type-only on purpose: src/types.ts re-exports the stage list from here, so a value import would be a cycle.
import type { StageStatus } from "./types";

export const STAGE_TYPES = ["data-ingestion", "transformation", "analysis", "validation", "processing", "output"] as const;
export type StageType = (typeof STAGE_TYPES)[number];

/** Codes a worker may name its failure with (a thrown error's `code`), carried to the task's error event. */
export const STAGE_ERROR_CODES = ["PATH_OUTSIDE_DATA_ROOT", "OBJECT_TOO_LARGE", "S3_NOT_FOUND", "S3_ACCESS_DENIED", "S3_REQUEST_REFUSED"] as const;
export type StageErrorCode = (typeof STAGE_ERROR_CODES)[number];

export type DataRecord = Record<string, unknown>;

/** The stage task payload's `upstream` entries: the dag's dependency result plus the stage type workers key on. */
export interface UpstreamEntry {
	index: number;
	type: string;
	status: StageStatus;
	/** Only a completed dependency carries its result; any other status sends null. */
	result: unknown;
}

/**
 * A stage task's payload, built by the pipeline engine or given directly for a standalone task. A type alias, not an
 * interface, so it stays assignable to a task's `payload` (a plain record). Workers still check every field: a
 * standalone payload is whatever its caller wrote.
 */
export type StagePayload = {
	/** The run's input_data: { source?, format?, delimiter?, output?, records? }. */
	input_data?: Record<string, unknown>;
	/** Run parameters, overlaid with the stage's own. */
	parameters?: Record<string, unknown>;
	/** Results of the stages this one depends on, keyed by stage name. */
	upstream?: Record<string, UpstreamEntry>;
	stage?: { index: number; name: string; type: StageType };
	/** Standalone task form: "file:///path/data.csv". */
	data_source?: string;
	/** Standalone task form: rows, output location and read options given without a run's input_data. */
	records?: DataRecord[];
	output?: string;
	format?: string;
	delimiter?: string;
};

export interface NumericSummary {
	count: number;
	missing: number;
	min: number;
	max: number;
	sum: number;
	mean: number;
	median: number;
	/** Sample standard deviation (n - 1), 0 for a single value. */
	stddev: number;
}

export interface ValidationIssue {
	/** 1-based position of the record in the stage's input (for CSV: the data row, header excluded). */
	row: number;
	field: string;
	message: string;
}

export interface AnalysisSummary {
	count: number;
	statistics: Record<string, NumericSummary>;
	groups: Record<string, Record<string, number>>;
}

export interface ValidationSummary {
	valid: number;
	invalid: number;
	error_count: number;
	errors: ValidationIssue[];
}

/** What every stage after ingestion forwards, so the output stage sees it even without a direct dependency. */
export interface StageContext {
	source?: string;
	analysis?: AnalysisSummary;
	validation?: ValidationSummary;
}

/** Rows inline or parked in a file, never both. */
export interface RecordsRef {
	records?: DataRecord[];
	records_file?: string;
}

export interface IngestionResult extends RecordsRef {
	source: string;
	format: string;
	count: number;
	columns: string[];
}

export interface TransformationResult extends RecordsRef {
	count: number;
	columns: string[];
	context: StageContext;
}

export interface AnalysisResult extends AnalysisSummary, RecordsRef {
	columns: string[];
	context: StageContext;
}

export interface FieldRule {
	type?: "number" | "integer" | "string" | "boolean";
	minimum?: number;
	maximum?: number;
	enum?: unknown[];
	pattern?: string;
}

export interface RecordSchema {
	required: string[];
	properties: Record<string, FieldRule>;
}

export interface ValidationResult extends ValidationSummary, RecordsRef {
	/** Valid records. */
	count: number;
	columns: string[];
	schema: RecordSchema;
	schema_source: "parameters" | "inferred";
	context: StageContext;
}

export interface ProcessingResult {
	group_by: string[];
	sum: string[];
	/** Number of groups. */
	count: number;
	record_count: number;
	columns: string[];
	groups?: DataRecord[];
	groups_file?: string;
	context: StageContext;
}

export interface OutputResult {
	output: string;
	format: "json" | "csv" | "jsonl";
	bytes: number;
	/** Rows in the written table: processing groups when present, else records. */
	records: number;
}
