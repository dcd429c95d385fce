/**
 * The validation stage's schema on ajv with RE2 patterns: the format it accepts and refuses, the messages each
 * rule gives, patterns that cannot stall the event loop, and patterns RE2 cannot run refused by field.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MAX_MATCHED_LENGTH } from "../../agents/patterns";
import { executeStage, StageInputError } from "../../agents/stage-worker";

type Json = Record<string, unknown>;

let root: string;

beforeAll(async () => {
	root = await mkdtemp(path.join(os.tmpdir(), "validation-schema-"));
});

afterAll(async () => {
	await rm(root, { recursive: true, force: true });
});

async function validate(records: Json[], schema: unknown, extra: Json = {}): Promise<Json> {
	const result = await executeStage("validation", { records, parameters: { schema, ...extra } }, { dataRoot: root });
	return JSON.parse(JSON.stringify(result)) as Json;
}

async function refusal(records: Json[], schema: unknown): Promise<StageInputError> {
	const error: unknown = await validate(records, schema).then(
		() => undefined,
		(err: unknown) => err
	);
	expect(error).toBeInstanceOf(StageInputError);
	expect(error).toMatchObject({ retryable: false });
	return error as StageInputError;
}

describe("patterns run on RE2", () => {
	it("checks ^(a+)+$ against a long 'aaaa…a!' without stalling, and gets both answers right", async () => {
		const evil = `${"a".repeat(50_000)}!`;
		// A backtracking engine would not return from this in any useful time; RE2 is linear in the input.
		const result = await validate([{ s: evil }, { s: "aaaa" }], { properties: { s: { type: "string", pattern: "^(a+)+$" } } });
		expect(result).toMatchObject({ valid: 1, invalid: 1, error_count: 1 });
		expect(result.errors).toEqual([{ row: 1, field: "s", message: `must match ^(a+)+$ (got "${"a".repeat(36)}...)` }]);
	});

	it("refuses what RE2 cannot run (backreferences, lookaround) and broken patterns, naming the field", async () => {
		for (const [pattern, detail] of [
			["^(a)\\1$", /invalid escape sequence/],
			["^(?=.*\\d)", /invalid perl operator: \(\?=/],
			["(?<!x)y", /invalid perl operator/],
			["[a-", /missing \]/]
		] as const) {
			const error = await refusal([{ code: "a" }], { properties: { code: { pattern } } });
			expect(error.message).toMatch(/^parameters\.schema\.properties\.code\.pattern cannot be used: /);
			expect(error.message).toMatch(detail);
			expect(error.message).toMatch(/patterns run on RE2: no backreferences, lookahead or lookbehind/);
		}
	});

	it("refuses a pattern too large for the engine, and the next run still works", async () => {
		const error = await refusal([{ word: "a" }], { properties: { ok: { pattern: "^x$" }, word: { pattern: "\\p{L}{1000}" } } });
		expect(error.message).toBe("parameters.schema.properties.word.pattern is too large for the pattern engine; use fewer or smaller repetitions");
		expect(await validate([{ word: "abc" }], { properties: { word: { pattern: "^\\p{L}+$" } } })).toMatchObject({ valid: 1 });
	});

	it("frees each run's patterns: many runs with a big pattern do not exhaust the engine's memory", async () => {
		// About ten of these fit in re2-wasm's fixed heap at once; without freeing, a later run would fail.
		for (let run = 0; run < 30; run++) {
			expect(await validate([{ s: "x".repeat(500) }], { properties: { s: { pattern: "^.{500}$" } } })).toMatchObject({ valid: 1 });
		}
	});

	it("keeps two fields' patterns apart", async () => {
		const schema = { properties: { a: { pattern: "^a+$" }, b: { pattern: "^b+$" } } };
		const result = await validate([{ a: "aa", b: "bb" }, { a: "bb", b: "aa" }], schema);
		expect(result.errors).toEqual([
			{ row: 2, field: "a", message: 'must match ^a+$ (got "bb")' },
			{ row: 2, field: "b", message: 'must match ^b+$ (got "aa")' }
		]);
	});

	it("reports a string too long to match instead of matching it", async () => {
		const long = "x".repeat(MAX_MATCHED_LENGTH + 1);
		const result = await validate([{ s: long }], { properties: { s: { pattern: "^x+$" } } });
		expect(result.errors).toEqual([
			{ row: 1, field: "s", message: `is too long to match ^x+$ (at most ${MAX_MATCHED_LENGTH} characters) (got ${long.length} characters)` }
		]);
	});
});

describe("the schema format", () => {
	it("refuses unknown keywords, at the top and in a rule", async () => {
		expect((await refusal([], { properties: { a: { type: "string", format: "email" } } })).message).toBe(
			'parameters.schema.properties.a has unknown keyword "format" (allowed: type, minimum, maximum, enum, pattern)'
		);
		expect((await refusal([], { required: [], additionalProperties: false })).message).toBe(
			'parameters.schema has unknown keyword "additionalProperties" (allowed: required, properties)'
		);
	});

	it("says which part of a bad schema is wrong", async () => {
		const cases: [unknown, string][] = [
			["id", "parameters.schema must be an object with required and/or properties"],
			[{ required: "id" }, "parameters.schema.required must be a list of column names"],
			[{ required: ["id", 3] }, "parameters.schema.required[1] must be a column name"],
			[{ properties: [] }, "parameters.schema.properties must be an object"],
			[{ properties: { a: "number" } }, "parameters.schema.properties.a must be an object"],
			[{ properties: { a: { type: "date" } } }, "parameters.schema.properties.a.type must be number, integer, string or boolean"],
			[{ properties: { a: { minimum: "0" } } }, "parameters.schema.properties.a.minimum must be a number"],
			[{ properties: { a: { enum: [] } } }, "parameters.schema.properties.a.enum must be a non-empty list"],
			[{ properties: { a: { pattern: "x".repeat(1001) } } }, "parameters.schema.properties.a.pattern must be a string of at most 1000 characters"]
		];
		for (const [schema, message] of cases) expect((await refusal([], schema)).message).toBe(message);
	});
});

describe("record checks", () => {
	const schema = {
		required: ["id", "name"],
		properties: {
			id: { type: "integer", minimum: 1 },
			price: { type: "number", minimum: 0, maximum: 100 },
			name: { type: "string", enum: ["a", "b"] },
			active: { type: "boolean" }
		}
	};

	it("gives each rule its message, in the stage's order, and only the type error for a wrongly typed field", async () => {
		const result = await validate(
			[
				{ id: 1, name: "a", price: 5, active: true },
				{ id: 1.5, name: 7, price: -1, active: "yes" },
				{ id: 0, name: "c", price: 101 },
				{ price: "x", name: "" }
			],
			schema
		);
		expect(result).toMatchObject({ valid: 1, invalid: 3, error_count: 10 });
		expect(result.errors).toEqual([
			{ row: 2, field: "id", message: "must be an integer (got 1.5)" },
			{ row: 2, field: "price", message: "must be >= 0 (got -1)" },
			{ row: 2, field: "name", message: "must be a string (got 7)" },
			{ row: 2, field: "active", message: 'must be a boolean (got "yes")' },
			{ row: 3, field: "id", message: "must be >= 1 (got 0)" },
			{ row: 3, field: "price", message: "must be <= 100 (got 101)" },
			{ row: 3, field: "name", message: 'must be one of "a", "b" (got "c")' },
			// An empty value is missing: required, and no rule runs on it.
			{ row: 4, field: "id", message: "is required" },
			{ row: 4, field: "name", message: "is required" },
			{ row: 4, field: "price", message: 'must be a number (got "x")' }
		]);
	});

	it("caps the reported issues but counts them all", async () => {
		const rows = Array.from({ length: 150 }, (_, i) => ({ id: -i - 1, name: "a" }));
		const result = await validate(rows, schema);
		expect(result).toMatchObject({ invalid: 150, error_count: 150 });
		expect(result.errors).toHaveLength(100);
	});

	it("fails with fail_on_invalid naming the rule, not the value", async () => {
		const error: unknown = await validate([{ id: 1, name: "top-secret-value" }], schema, { fail_on_invalid: true }).catch((err: unknown) => err);
		expect(error).toBeInstanceOf(StageInputError);
		expect((error as Error).message).toBe('validation failed: 1 of 1 records invalid (first: row 1 name must be one of "a", "b")');
	});
});
