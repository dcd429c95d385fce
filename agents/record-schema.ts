/**
 * The record schema of the validation stage: read from `parameters.schema`, or inferred from the data when none is
 * given, and each record checked against it.
 */
import type { DataRecord, FieldRule, RecordSchema } from "../src/stage-contract";
import { isPlainObject } from "./data-files";
import { StageInputError } from "./stage-error";
import { isMissing, isNumber, profileColumns } from "./statistics";
import { stringArray } from "./values";

export function parseSchema(value: unknown): RecordSchema {
	if (!isPlainObject(value)) throw new StageInputError("parameters.schema must be an object with required and/or properties");
	const required = value.required === undefined ? [] : stringArray(value.required);
	if (!required) throw new StageInputError("parameters.schema.required must be a list of column names");
	const properties: Record<string, FieldRule> = {};
	if (value.properties !== undefined) {
		if (!isPlainObject(value.properties)) throw new StageInputError("parameters.schema.properties must be an object");
		for (const [field, rule] of Object.entries(value.properties)) {
			if (!isPlainObject(rule)) throw new StageInputError(`parameters.schema.properties.${field} must be an object`);
			const parsed: FieldRule = {};
			if (rule.type !== undefined) {
				if (rule.type !== "number" && rule.type !== "integer" && rule.type !== "string" && rule.type !== "boolean") {
					throw new StageInputError(`parameters.schema.properties.${field}.type must be number, integer, string or boolean`);
				}
				parsed.type = rule.type;
			}
			for (const bound of ["minimum", "maximum"] as const) {
				if (rule[bound] === undefined) continue;
				const limit = rule[bound];
				if (!isNumber(limit)) throw new StageInputError(`parameters.schema.properties.${field}.${bound} must be a number`);
				parsed[bound] = limit;
			}
			if (rule.enum !== undefined) {
				if (!Array.isArray(rule.enum)) throw new StageInputError(`parameters.schema.properties.${field}.enum must be a list`);
				parsed.enum = rule.enum;
			}
			if (rule.pattern !== undefined) {
				if (typeof rule.pattern !== "string") throw new StageInputError(`parameters.schema.properties.${field}.pattern must be a string`);
				try {
					new RegExp(rule.pattern);
				} catch (err) {
					const reason = (err as Error).message;
					throw new StageInputError(`parameters.schema.properties.${field}.pattern is not a valid regular expression: ${reason}`);
				}
				parsed.pattern = rule.pattern;
			}
			properties[field] = parsed;
		}
	}
	return { required, properties };
}

/** Every column that has data must be filled in, and numeric columns must not be negative. */
export function inferSchema(records: DataRecord[], columns: string[]): RecordSchema {
	const schema: RecordSchema = { required: [], properties: {} };
	for (const profile of profileColumns(records, columns)) {
		// A column empty in every row is optional by nature; requiring it would reject everything.
		if (profile.kind === "empty") continue;
		schema.required.push(profile.name);
		if (profile.kind === "number") schema.properties[profile.name] = { type: "number", minimum: 0 };
	}
	return schema;
}

function describe(value: unknown): string {
	const text = typeof value === "string" ? JSON.stringify(value) : String(value);
	return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export function checkRecord(record: DataRecord, schema: RecordSchema): { field: string; message: string }[] {
	const problems: { field: string; message: string }[] = [];
	for (const field of schema.required) {
		if (isMissing(record[field])) problems.push({ field, message: "is required" });
	}
	for (const [field, rule] of Object.entries(schema.properties)) {
		const value = record[field];
		if (isMissing(value)) continue;
		if (rule.type === "number" && !isNumber(value)) {
			problems.push({ field, message: `must be a number (got ${describe(value)})` });
			continue;
		}
		if (rule.type === "integer" && !(isNumber(value) && Number.isInteger(value))) {
			problems.push({ field, message: `must be an integer (got ${describe(value)})` });
			continue;
		}
		if (rule.type === "string" && typeof value !== "string") {
			problems.push({ field, message: `must be a string (got ${describe(value)})` });
			continue;
		}
		if (rule.type === "boolean" && typeof value !== "boolean") {
			problems.push({ field, message: `must be a boolean (got ${describe(value)})` });
			continue;
		}
		if (rule.minimum !== undefined && isNumber(value) && value < rule.minimum) {
			problems.push({ field, message: `must be >= ${rule.minimum} (got ${value})` });
		}
		if (rule.maximum !== undefined && isNumber(value) && value > rule.maximum) {
			problems.push({ field, message: `must be <= ${rule.maximum} (got ${value})` });
		}
		if (rule.enum && !rule.enum.includes(value)) {
			problems.push({ field, message: `must be one of ${rule.enum.map(describe).join(", ")} (got ${describe(value)})` });
		}
		if (rule.pattern !== undefined && typeof value === "string" && !new RegExp(rule.pattern).test(value)) {
			problems.push({ field, message: `must match ${rule.pattern} (got ${describe(value)})` });
		}
	}
	return problems;
}
