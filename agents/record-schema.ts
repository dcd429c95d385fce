/**
 * The record schema of the validation stage: read from `parameters.schema`, or inferred from the data when none is
 * given, compiled with ajv once per stage run (patterns on RE2, see patterns.ts) and each record checked against it.
 *
 * The schema format is the stage's own subset of JSON Schema: `required`, and `properties` with type
 * (number | integer | string | boolean), minimum, maximum, enum and pattern. Anything else is refused.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import type { DataRecord, FieldRule, RecordSchema } from "../src/stage-contract";
import { MAX_MATCHED_LENGTH, MAX_PATTERN_LENGTH, PatternSet } from "./patterns";
import { StageInputError } from "./stage-error";
import { isMissing, profileColumns } from "./statistics";

/**
 * What `parameters.schema` may hold. Each node's `description` is the message given when that node is wrong, so
 * the refusals read as before ajv: "parameters.schema.properties.a.type must be number, integer, string or boolean".
 */
const FIELD_RULE = {
	type: "object",
	description: "must be an object",
	additionalProperties: false,
	properties: {
		type: { enum: ["number", "integer", "string", "boolean"], description: "must be number, integer, string or boolean" },
		minimum: { type: "number", description: "must be a number" },
		maximum: { type: "number", description: "must be a number" },
		enum: { type: "array", minItems: 1, description: "must be a non-empty list" },
		pattern: { type: "string", maxLength: MAX_PATTERN_LENGTH, description: `must be a string of at most ${MAX_PATTERN_LENGTH} characters` }
	}
};

const SCHEMA_FORMAT = {
	type: "object",
	description: "must be an object with required and/or properties",
	additionalProperties: false,
	properties: {
		required: { type: "array", items: { type: "string", description: "must be a column name" }, description: "must be a list of column names" },
		properties: { type: "object", additionalProperties: FIELD_RULE, description: "must be an object" }
	}
};

/** Compiled once: the format never changes. verbose: errors carry the schema node whose description they use. */
const checkFormat = new Ajv({ verbose: true, strict: true }).compile(SCHEMA_FORMAT);

/** A JSON pointer's segments, unescaped (RFC 6901). */
function segments(pointer: string): string[] {
	return pointer
		.split("/")
		.slice(1)
		.map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** As a readable path: properties.a.type, required[0]. */
function readablePath(pointer: string): string {
	return segments(pointer)
		.map((segment) => (/^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`))
		.join("");
}

function formatError(error: ErrorObject): string {
	const where = `parameters.schema${readablePath(error.instancePath)}`;
	const node = error.parentSchema as { description?: string; properties?: Record<string, unknown> } | undefined;
	if (error.keyword === "additionalProperties") {
		const allowed = Object.keys(node?.properties ?? {}).join(", ");
		return `${where} has unknown keyword ${JSON.stringify(error.params.additionalProperty)} (allowed: ${allowed})`;
	}
	return `${where} ${node?.description ?? error.message ?? "is not valid"}`;
}

export function parseSchema(value: unknown): RecordSchema {
	if (!checkFormat(value)) throw new StageInputError(formatError((checkFormat.errors ?? [])[0]));
	const schema = value as { required?: string[]; properties?: Record<string, FieldRule> };
	return { required: schema.required ?? [], properties: schema.properties ?? {} };
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

/** One thing wrong with a record: `rule` says what, `got` is the value (kept apart: error messages omit it). */
export interface Problem {
	field: string;
	rule: string;
	got?: string;
}

export interface RecordChecker {
	check(record: DataRecord): Problem[];
	/** Frees the compiled patterns; the checker is unusable afterwards. */
	dispose(): void;
}

function describe(value: unknown): string {
	const text = typeof value === "string" ? JSON.stringify(value) : String(value);
	return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** Missing values (null, empty text) count as absent, as everywhere in the stages: required fails, rules skip them. */
function present(record: DataRecord): DataRecord {
	// fromEntries, not assignment: a "__proto__" column stays a column.
	return Object.fromEntries(Object.entries(record).filter(([, value]) => !isMissing(value)));
}

const RULE_ORDER = ["type", "minimum", "maximum", "enum", "pattern"];

function fieldOf(error: ErrorObject): string {
	if (error.keyword === "required") return String(error.params.missingProperty);
	// Records are flat: the first segment is the column.
	return segments(error.instancePath)[0] ?? "";
}

function toProblem(error: ErrorObject, field: string, value: unknown): Problem {
	const params = error.params as Record<string, unknown>;
	switch (error.keyword) {
		case "required":
			return { field, rule: "is required" };
		case "type":
			return { field, rule: `must be ${params.type === "integer" ? "an" : "a"} ${String(params.type)}`, got: describe(value) };
		case "minimum":
		case "maximum":
			return { field, rule: `must be ${String(params.comparison)} ${String(params.limit)}`, got: String(value) };
		case "enum":
			return { field, rule: `must be one of ${(params.allowedValues as unknown[]).map(describe).join(", ")}`, got: describe(value) };
		case "pattern":
			if (typeof value === "string" && value.length > MAX_MATCHED_LENGTH) {
				return { field, rule: `is too long to match ${String(params.pattern)} (at most ${MAX_MATCHED_LENGTH} characters)`, got: `${value.length} characters` };
			}
			return { field, rule: `must match ${String(params.pattern)}`, got: describe(value) };
		default:
			return { field, rule: `fails ${error.keyword}` };
	}
}

/** ajv's errors in the order the stage always reported them; a field of the wrong type reports only that. */
function problemsOf(validate: ValidateFunction, record: DataRecord, schema: RecordSchema): Problem[] {
	const data = present(record);
	if (validate(data)) return [];
	const properties = Object.keys(schema.properties);
	// Required columns first, in their order; then each property's rules, in property order.
	const rank = (error: ErrorObject, field: string): number[] =>
		error.keyword === "required"
			? [0, schema.required.indexOf(field)]
			: [1, properties.indexOf(field), RULE_ORDER.indexOf(error.keyword)];
	const found = (validate.errors ?? []).map((error) => {
		const field = fieldOf(error);
		return { error, field, rank: rank(error, field) };
	});
	const wrongType = new Set(found.filter(({ error }) => error.keyword === "type").map(({ field }) => field));
	return found
		.filter(({ error, field }) => error.keyword === "type" || error.keyword === "required" || !wrongType.has(field))
		.sort((a, b) => a.rank.reduce((order, value, i) => order || value - (b.rank[i] ?? 0), 0))
		.map(({ error, field }) => toProblem(error, field, Object.hasOwn(data, field) ? data[field] : undefined));
}

/**
 * Compiles the schema for one stage run. Patterns are compiled first, one by one, so a pattern RE2 cannot run is
 * refused naming its field; ajv then takes them from the same set. Call `dispose` when the run's check is done.
 */
export function compileRecordSchema(schema: RecordSchema): RecordChecker {
	const patterns = new PatternSet();
	try {
		for (const [field, rule] of Object.entries(schema.properties)) {
			if (typeof rule.pattern === "string") patterns.compile(rule.pattern, `parameters.schema.properties.${field}.pattern`);
		}
		// Not strict about types (a rule such as { minimum: 0 } without a type applies to numbers only) nor about
		// required columns without a rule: both are the format's own. Unknown keywords were refused by parseSchema.
		const ajv = new Ajv({
			allErrors: true,
			strict: true,
			strictTypes: false,
			strictRequired: false,
			strictNumbers: true,
			messages: false,
			code: { regExp: patterns.engine }
		});
		const validate = ajv.compile({ type: "object", required: schema.required, properties: schema.properties });
		return { check: (record) => problemsOf(validate, record, schema), dispose: () => patterns.dispose() };
	} catch (err) {
		patterns.dispose();
		if (err instanceof StageInputError) throw err;
		throw new StageInputError(`parameters.schema cannot be compiled: ${(err as Error).message}`);
	}
}
