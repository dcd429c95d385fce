import type { DataRecord, ValidationIssue, ValidationResult, ValidationSummary } from "../../src/stage-contract";
import { compileRecordSchema, inferSchema, parseSchema, type Problem } from "../record-schema";
import { StageInputError } from "../stage-error";
import { packRows } from "../spill";
import { gatherContext, requireRecords, typedRecords, type StageRun } from "../stage-input";

const MAX_REPORTED_ERRORS = 100;

export async function validate(run: StageRun): Promise<ValidationResult> {
	const input = await requireRecords(run, ["analysis", "transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	const fromParameters = run.params.schema !== undefined && run.params.schema !== null;
	const schema = fromParameters ? parseSchema(run.params.schema) : inferSchema(records, input.columns);
	run.progress(0.2, `validating ${records.length} records against ${fromParameters ? "the given" : "an inferred"} schema`);

	const valid: DataRecord[] = [];
	const errors: ValidationIssue[] = [];
	let errorCount = 0;
	let first: (Problem & { row: number }) | undefined;
	// From compile to dispose nothing awaits, so no two runs hold compiled patterns in RE2's fixed heap at once.
	const checker = compileRecordSchema(schema);
	try {
		records.forEach((record, index) => {
			const problems = checker.check(record);
			if (problems.length === 0) {
				valid.push(record);
				return;
			}
			errorCount += problems.length;
			first ??= { row: index + 1, ...problems[0] };
			for (const { field, rule, got } of problems) {
				if (errors.length < MAX_REPORTED_ERRORS) errors.push({ row: index + 1, field, message: got === undefined ? rule : `${rule} (got ${got})` });
			}
		});
	} finally {
		checker.dispose();
	}
	const invalid = records.length - valid.length;
	run.progress(0.8, `${valid.length} valid, ${invalid} invalid`);

	const failOnInvalid = run.params.fail_on_invalid === true || run.params.fail_on_invalid === "true";
	if (failOnInvalid && invalid > 0) {
		// The rule without the offending value: an error message carries no file content.
		throw new StageInputError(
			`validation failed: ${invalid} of ${records.length} records invalid` +
				(first ? ` (first: row ${first.row} ${first.field} ${first.rule})` : "")
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
