/**
 * The reference worker on real files in a temp dir, which is also its data root. Stage results go through a JSON
 * round trip, as they would on the wire, and each stage sees only its direct dependency, as the default
 * pipeline's chain gives it.
 */
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { cleanValue, executeStage, StageInputError, toSnakeCase, type ProgressReporter } from "../../agents/stage-worker";

const SAMPLE = path.join(__dirname, "../../examples/sample.csv");
const CHAIN = [
	{ name: "data-ingestion", type: "data-ingestion" },
	{ name: "data-transformation", type: "transformation" },
	{ name: "data-analysis", type: "analysis" },
	{ name: "data-validation", type: "validation" },
	{ name: "data-processing", type: "processing" },
	{ name: "output-generation", type: "output" }
] as const;

type Json = Record<string, unknown>;

let dir: string;
let samplePath: string;

beforeEach(async () => {
	dir = await mkdtemp(path.join(os.tmpdir(), "stage-worker-"));
	samplePath = path.join(dir, "sales.csv");
	await copyFile(SAMPLE, samplePath);
});

afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

async function run(type: string, payload: Json, report?: ProgressReporter): Promise<Json> {
	return JSON.parse(JSON.stringify(await executeStage(type, payload, { dataRoot: dir, report }))) as Json;
}

/** Runs the first `upTo` stages of the default chain the way the engine would, returning every result. */
async function runChain(
	inputData: Json,
	parameters: Json = {},
	upTo: number = CHAIN.length,
	report?: ProgressReporter
): Promise<Json[]> {
	const results: Json[] = [];
	for (let index = 0; index < upTo; index++) {
		const stage = CHAIN[index];
		const previous = index > 0 ? CHAIN[index - 1] : undefined;
		const upstream = previous ? { [previous.name]: { index: index - 1, type: previous.type, result: results[index - 1] } } : {};
		results.push(await run(stage.type, { input_data: inputData, parameters, upstream, stage: { index, ...stage } }, report));
	}
	return results;
}

function records(result: Json): Json[] {
	return result.records as Json[];
}

describe("csv", () => {
	/** A file's records as data-ingestion reads them (values as strings). */
	async function ingest(text: string, parameters: Json = {}): Promise<Json> {
		const file = path.join(dir, "input.csv");
		await writeFile(file, text);
		return run("data-ingestion", { data_source: file, parameters });
	}

	it("handles quotes, doubled quotes, embedded newlines, CRLF and a BOM", async () => {
		const result = await ingest('\ufeffa,b\r\n"x, y","say ""hi"""\r\n"multi\nline",2\r\n\r\n');
		expect(result.columns).toEqual(["a", "b"]);
		expect(records(result)).toEqual([
			{ a: "x, y", b: 'say "hi"' },
			{ a: "multi\nline", b: "2" }
		]);
	});

	it("pads short rows, drops cells beyond the header and renames duplicate headers", async () => {
		const result = await ingest("a,a,b\n1,2\n3,4,5,6\n");
		expect(result).toMatchObject({ columns: ["a", "a_2", "b"], count: 2 });
		expect(records(result)).toEqual([{ a: "1", a_2: "2", b: "" }, { a: "3", a_2: "4", b: "5" }]);
	});

	it("reads a tab-separated file by delimiter name, with tabs inside quotes kept", async () => {
		const result = await ingest('id\tnote\n1\t"a\tb"\n', { delimiter: "tab" });
		expect(records(result)).toEqual([{ id: "1", note: "a\tb" }]);
	});

	it("fails an unterminated quote without retries, naming the file and the line its record starts on", async () => {
		const failure = await ingest('a,b\n1,2\n3,"open secret\n4,5\n').catch((err: unknown) => err);
		expect(failure).toBeInstanceOf(StageInputError);
		expect((failure as Error).message).toMatch(/^CSV .*input\.csv has an unterminated quoted field in the record starting on line 3$/);
		expect((failure as Error).message).not.toContain("secret");
	});
});

describe("value helpers", () => {
	it("snake_cases column names", () => {
		expect(["Unit Price", "unitPrice", "Order-ID", "  total  ", "HTTPStatus", "%"].map(toSnakeCase)).toEqual([
			"unit_price",
			"unit_price",
			"order_id",
			"total",
			"http_status",
			"column"
		]);
	});

	it("coerces numbers but keeps codes and huge ids as text", () => {
		expect(["12", " -3.5 ", "1e3", "", "  ", "007", "0.5", "12345678901234567890", "N/A"].map(cleanValue)).toEqual([
			12,
			-3.5,
			1000,
			null,
			null,
			"007",
			0.5,
			"12345678901234567890",
			"N/A"
		]);
	});
});

describe("data-ingestion", () => {
	it("reads the sample CSV from a file:// source and reports progress", async () => {
		const report = jest.fn();
		const result = await run("data-ingestion", { input_data: { source: pathToFileURL(samplePath).href } }, report);
		expect(result.count).toBe(30);
		expect(result.columns).toEqual(["id", "region", "product", "quantity", "unit_price", "date"]);
		expect(result.source).toBe(pathToFileURL(samplePath).href);
		expect(result.format).toBe("csv");
		expect(records(result)[4]).toEqual({
			id: "1005",
			region: "North",
			product: "Cable, USB-C",
			quantity: "40",
			unit_price: "8.75",
			date: "2024-01-08"
		});
		expect(report.mock.calls.length).toBeGreaterThanOrEqual(2);
		for (const [progress] of report.mock.calls) expect(progress).toBeGreaterThanOrEqual(0);
		expect(report.mock.calls.map((call) => call[1]).join(" ")).toMatch(/read 30 records/);
	});

	it("takes the spec's standalone task payload with a plain path and delimiter", async () => {
		const file = path.join(dir, "semi.txt");
		await writeFile(file, "Name;Unit Price\nWidget;2,5\n");
		const result = await run("data-ingestion", { data_source: file, parameters: { format: "csv", delimiter: ";" } });
		expect(records(result)).toEqual([{ Name: "Widget", "Unit Price": "2,5" }]);
	});

	it("reads a JSON array and JSON lines, by extension or format", async () => {
		const arrayFile = path.join(dir, "rows.json");
		await writeFile(arrayFile, JSON.stringify([{ a: 1, b: "x" }, { a: 2, c: true }]));
		const fromArray = await run("data-ingestion", { data_source: pathToFileURL(arrayFile).href });
		expect(fromArray).toMatchObject({ format: "json", count: 2, columns: ["a", "b", "c"] });
		expect(records(fromArray)[1]).toEqual({ a: 2, c: true });

		const linesFile = path.join(dir, "rows.data");
		await writeFile(linesFile, '{"a":1}\n\n{"a":2}\n');
		const fromLines = await run("data-ingestion", { input_data: { source: linesFile, format: "jsonl" } });
		expect(fromLines).toMatchObject({ format: "jsonl", count: 2 });
	});

	it("refuses schemes other than file:// and s3:// with a clear message", async () => {
		await expect(run("data-ingestion", { input_data: { source: "http://example.com/x.csv" } })).rejects.toThrow(
			/unsupported data source scheme http: \(the reference worker reads file:\/\/ and s3:\/\/\)/
		);
	});

	it("refuses s3:// URLs that name more than a bucket and a key, before any request", async () => {
		for (const url of [
			"s3://bucket",
			"s3://bucket/",
			"s3://bucket/folder/",
			"s3://user:secret@bucket/data.csv",
			"s3://bucket:9000/data.csv",
			"s3://169.254.169.254/latest",
			"s3://arn:aws:s3:us-east-1:123456789012:accesspoint/x/data.csv",
			"s3://my-alias-s3alias/data.csv",
			"s3://zone--use1-az4--x-s3/data.csv",
			"s3://Bucket_Name/data.csv",
			"s3://bucket/data.csv?versionId=1",
			"s3://bucket/a/../../other/data.csv",
			"s3://bucket/a\nb.csv"
		]) {
			const error: unknown = await run("data-ingestion", { data_source: url }).catch((err: unknown) => err);
			expect(error).toBeInstanceOf(StageInputError);
			expect((error as Error).message).toMatch(/is not a usable s3:\/\/ location/);
		}
	});

	it("names a missing file and a missing source", async () => {
		await expect(run("data-ingestion", { data_source: path.join(dir, "nope.csv") })).rejects.toThrow(/does not exist/);
		await expect(run("data-ingestion", {})).rejects.toThrow(/needs a data source/);
	});
});

describe("transformation", () => {
	it("types values, normalises columns and derives total", async () => {
		const [, transformed] = await runChain({ source: samplePath }, {}, 2);
		expect(transformed.count).toBe(30);
		expect(transformed.columns).toEqual(["id", "region", "product", "quantity", "unit_price", "date", "total"]);
		expect(records(transformed)[2]).toEqual({
			id: 1003,
			region: "East",
			product: "Keyboard",
			quantity: 12,
			unit_price: 49.5,
			date: "2024-01-05",
			total: 594
		});
		// Float noise is rounded away: 15 * 19.99 is 299.84999999999997 in binary floating point.
		expect(records(transformed)[8].total).toBe(299.85);
		expect(records(transformed)[16].region).toBeNull();
	});

	it("applies rename and select to messy headers", async () => {
		const file = path.join(dir, "messy.csv");
		await writeFile(file, "Order ID,Sales Region,Quantity,UnitPrice\n A-1 , north ,3,2.5\n");
		const ingested = await run("data-ingestion", { data_source: file });
		const result = await run("transformation", {
			parameters: { rename: { "Sales Region": "region" }, select: ["order_id", "region", "total"] },
			upstream: { ingest: { index: 0, type: "data-ingestion", result: ingested } }
		});
		expect(result.columns).toEqual(["order_id", "region", "total"]);
		expect(records(result)).toEqual([{ order_id: "A-1", region: "north", total: 7.5 }]);
	});

	it("rejects selecting an unknown column", async () => {
		await expect(run("transformation", { data_source: samplePath, parameters: { select: ["nope"] } })).rejects.toThrow(
			/unknown column\(s\) nope/
		);
	});
});

describe("analysis", () => {
	it("summarises numeric columns and counts categories", async () => {
		const [, , analysis] = await runChain({ source: samplePath }, {}, 3);
		const statistics = analysis.statistics as Record<string, Json>;
		expect(Object.keys(statistics)).toEqual(["quantity", "unit_price", "total"]);
		expect(statistics.quantity).toMatchObject({ count: 30, missing: 0, min: -3, max: 60, sum: 391, median: 7.5 });
		expect(statistics.quantity.mean).toBeCloseTo(391 / 30, 10);
		expect(statistics.quantity.stddev).toBeCloseTo(15.300401917942375, 10);
		expect(analysis.groups).toEqual({
			region: { East: 7, North: 8, South: 7, West: 7 },
			product: { "Cable, USB-C": 5, Keyboard: 6, Laptop: 7, Monitor: 6, Mouse: 6 }
		});
		// Rows pass through for validation, which depends on analysis only.
		expect(records(analysis)).toHaveLength(30);
	});

	it("types raw rows when it reads ingestion output directly", async () => {
		const ingested = await run("data-ingestion", { data_source: samplePath });
		const analysis = await run("analysis", { upstream: { in: { index: 0, type: "data-ingestion", result: ingested } } });
		expect((analysis.statistics as Record<string, Json>).quantity.max).toBe(60);
	});
});

describe("validation", () => {
	it("flags the negative quantity and the missing region with the inferred schema", async () => {
		const [, , , validation] = await runChain({ source: samplePath }, {}, 4);
		expect(validation).toMatchObject({ valid: 28, invalid: 2, error_count: 3, count: 28, schema_source: "inferred" });
		expect(validation.errors).toEqual([
			{ row: 14, field: "quantity", message: "must be >= 0 (got -3)" },
			{ row: 14, field: "total", message: "must be >= 0 (got -59.97)" },
			{ row: 17, field: "region", message: "is required" }
		]);
		expect(records(validation).map((r) => r.id)).not.toContain(1014);
		expect(records(validation).map((r) => r.id)).not.toContain(1017);
	});

	it("uses a given schema", async () => {
		const schema = {
			required: ["id", "product"],
			properties: { quantity: { type: "integer", minimum: 0, maximum: 50 }, product: { type: "string", enum: ["Laptop", "Mouse"] } }
		};
		const result = await run("validation", { data_source: samplePath, parameters: { schema } });
		expect(result.schema_source).toBe("parameters");
		// Laptop/Mouse rows: 13; of those quantity -3 (1014) fails, everything else is within 0..50.
		expect(result.valid).toBe(12);
		expect((result.errors as Json[]).some((e) => e.field === "quantity" && /<= 50/.test(String(e.message)))).toBe(true);
	});

	it("throws when fail_on_invalid is set and rows are invalid", async () => {
		await expect(runChain({ source: samplePath }, { fail_on_invalid: true }, 4)).rejects.toThrow(
			/validation failed: 2 of 30 records invalid \(first: row 14 quantity must be >= 0/
		);
	});

	it("passes with fail_on_invalid when everything is valid", async () => {
		const file = path.join(dir, "clean.json");
		await writeFile(file, JSON.stringify([{ region: "North", quantity: 1 }]));
		const result = await run("validation", { data_source: file, parameters: { fail_on_invalid: true } });
		expect(result).toMatchObject({ valid: 1, invalid: 0, errors: [] });
	});

	it("rejects a malformed schema", async () => {
		await expect(
			run("validation", { data_source: samplePath, parameters: { schema: { properties: { a: { type: "date" } } } } })
		).rejects.toThrow(/type must be number, integer, string or boolean/);
	});
});

describe("processing", () => {
	it("groups valid records by the first category column and sums numbers", async () => {
		const [, , , , processing] = await runChain({ source: samplePath }, {}, 5);
		expect(processing).toMatchObject({ group_by: ["region"], count: 4, record_count: 28 });
		const groups = processing.groups as Json[];
		expect(groups.map((g) => g.region)).toEqual(["East", "North", "South", "West"]);
		expect(groups[1]).toEqual({ region: "North", count: 8, quantity: 137, unit_price: 2672.97, total: 6633.65 });
		expect(groups.reduce((n, g) => n + (g.count as number), 0)).toBe(28);
	});

	it("honours group_by and sum, and rejects unknown columns", async () => {
		const result = await run("processing", { data_source: samplePath, parameters: { group_by: "region,product", sum: ["quantity"] } });
		expect(result.columns).toEqual(["region", "product", "count", "quantity"]);
		expect((result.groups as Json[])[0]).toEqual({ region: "East", product: "Cable, USB-C", count: 1, quantity: 60 });
		await expect(run("processing", { data_source: samplePath, parameters: { group_by: "country" } })).rejects.toThrow(
			/group_by names unknown column/
		);
	});
});

describe("output and the full chain", () => {
	it("runs ingestion through output and writes the report next to the input", async () => {
		const report = jest.fn();
		const results = await runChain({ source: pathToFileURL(samplePath).href }, {}, CHAIN.length, report);
		const output = results[5];
		const expectedPath = path.join(dir, "sales.output.json");
		expect(output).toMatchObject({ output: pathToFileURL(expectedPath).href, format: "json", records: 4 });
		expect(output.bytes).toBe((await stat(expectedPath)).size);

		const written = JSON.parse(await readFile(expectedPath, "utf8")) as Json;
		expect(written.source).toBe(pathToFileURL(samplePath).href);
		expect(written.processing).toMatchObject({ group_by: ["region"], count: 4 });
		expect((written.processing as Json).groups).toEqual(results[4].groups);
		// Analysis and validation reach the output only through the forwarded context.
		expect((written.analysis as Json).statistics).toEqual(results[2].statistics);
		expect(written.validation).toMatchObject({ valid: 28, invalid: 2, error_count: 3 });
		expect(written.records).toBeUndefined();
		expect(report.mock.calls.length).toBeGreaterThanOrEqual(12);
	});

	it("writes CSV when the output path ends in .csv", async () => {
		const target = path.join(dir, "out", "by-region.csv");
		const results = await runChain({ source: samplePath, output: pathToFileURL(target).href });
		expect(results[5]).toMatchObject({ format: "csv", records: 4 });
		const text = await readFile(target, "utf8");
		expect(text.split("\n")[0]).toBe("region,count,quantity,unit_price,total");
		expect(text).toContain("North,8,137,2672.97,6633.65\n");
	});

	it("writes the records themselves when there is no processing stage", async () => {
		const target = path.join(dir, "valid.json");
		const validation = await run("validation", { data_source: samplePath });
		const output = await run("output", {
			parameters: { output: target },
			upstream: { check: { index: 0, type: "validation", result: validation } }
		});
		expect(output.records).toBe(28);
		const written = JSON.parse(await readFile(target, "utf8")) as Json;
		expect(written.count).toBe(28);
		expect((written.records as Json[])[0]).toMatchObject({ id: 1001, quantity: 2 });
		expect(written.validation).toMatchObject({ invalid: 2 });
	});

	it("parks large row sets in files and still finishes the chain", async () => {
		const results = await runChain({ source: samplePath }, { max_inline_records: 10 });
		const transformed = results[1];
		expect(transformed.records).toBeUndefined();
		const spilled = fileURLToPath(String(transformed.records_file));
		expect(path.dirname(spilled)).toBe(dir);
		expect(JSON.parse(await readFile(spilled, "utf8"))).toHaveLength(30);
		expect(results[3].records_file).toEqual(expect.any(String));
		// Four groups fit inline, so processing returns them directly.
		expect(results[4].groups).toHaveLength(4);
		const written = JSON.parse(await readFile(path.join(dir, "sales.output.json"), "utf8")) as Json;
		expect(written.validation).toMatchObject({ valid: 28 });
	});

	it("refuses an output location of an unknown scheme", async () => {
		await expect(run("output", { data_source: samplePath, parameters: { output: "ftp://host/out.json" } })).rejects.toThrow(
			/unsupported output scheme ftp:/
		);
	});
});

describe("executeStage", () => {
	it("rejects an unknown stage type", async () => {
		await expect(executeStage("compile", {}, { dataRoot: dir })).rejects.toThrow(/unsupported stage type "compile"/);
	});

	it("marks failures the same input would repeat as not retryable", async () => {
		const failures = [
			executeStage("compile", {}, { dataRoot: dir }),
			executeStage("data-ingestion", { data_source: "http://example.com/x.csv" }, { dataRoot: dir }),
			executeStage("data-ingestion", { data_source: "s3://bucket/x.csv", parameters: { max_object_bytes: -1 } }, { dataRoot: dir }),
			executeStage("validation", { data_source: samplePath, parameters: { fail_on_invalid: true } }, { dataRoot: dir })
		];
		for (const failure of failures) {
			const error: unknown = await failure.catch((err: unknown) => err);
			expect(error).toBeInstanceOf(StageInputError);
			expect(error).toMatchObject({ retryable: false });
		}
	});

	it("does not fail a stage because the progress reporter fails", async () => {
		const result = await run("data-ingestion", { data_source: samplePath }, () => {
			throw new Error("reporter down");
		});
		expect(result.count).toBe(30);
	});
});
