/**
 * The reference worker's streamed reading: a JSON array read in chunks of any size gives what the whole-text parser
 * gives, a CSV file what it says (quoting, BOM, delimiters, line ends, ragged rows), whatever the chunks, and errors
 * that name the line; the CSV it writes reads back the same; S3 URLs name a bucket and a key and nothing else; what an S3 failure means for the task
 * (the SDK's own exception classes, built as its deserialisers build them from an answer).
 */
import { Readable } from "node:stream";
import { AccessDenied, NoSuchBucket, NoSuchKey, S3ServiceException } from "@aws-sdk/client-s3";
import { formatCsv } from "../../agents/csv";
import { csvRecords } from "../../agents/csv-stream";
import { JsonArraySplitter, JsonPosition } from "../../agents/json-stream";
import { limitBytes } from "../../agents/locations/byte-limit";
import { parseS3Url } from "../../agents/locations/s3";
import { S3_ACCESS_DENIED, S3_NOT_FOUND, S3_REQUEST_REFUSED, s3Failure } from "../../agents/locations/s3-errors";
import { StageInputError } from "../../agents/stage-worker";

/** The text in pieces of `size` characters. */
const pieces = (text: string, size: number): string[] => Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

describe("JsonArraySplitter", () => {
	const rows = [{ a: "x, ] } [ {", b: 'say "hi" \\ ok' }, [1, [2, [3]]], "plain", 12.5, null, { nested: { deep: [{ e: "é" }] } }, true];
	const text = ` \n[ ${rows.map((row) => JSON.stringify(row, null, 1)).join(" ,\n")} ]\n `;

	it("gives every element whatever the chunk size", () => {
		for (const size of [1, 2, 3, 7, 64, text.length]) {
			const splitter = new JsonArraySplitter();
			const out = pieces(text, size).flatMap((piece) => splitter.push(piece));
			splitter.end();
			expect(out).toEqual(rows);
		}
	});

	it("reads an empty array, and tells a document that is no array", () => {
		const empty = new JsonArraySplitter();
		expect(empty.push(" [ ] ")).toEqual([]);
		empty.end();
		const object = new JsonArraySplitter();
		expect(() => object.push('{"a": 1}')).toThrow(JsonPosition);
		expect(object.isArray).toBe(false);
	});

	it("says where it breaks: a bad element, a stray comma, text after the array, an array left open", () => {
		const at = (text: string): string => {
			const splitter = new JsonArraySplitter();
			try {
				splitter.push(text);
				splitter.end();
			} catch (err) {
				return (err as Error).message;
			}
			return "no error";
		};
		// V8 names no offset for this one: the broken element's first character is named instead.
		expect(at('[\n  {"a": 1},\n  {"password": hunter2}\n]')).toBe("line 3, column 3");
		expect(at("[1,,2]")).toMatch(/^line 1, column \d+$/);
		expect(at("[1] [2]")).toBe("line 1, column 5");
		expect(at('[{"a": 1}')).toMatch(/^line 1/);
	});
});

/** Every record of `text` read through csvRecords in chunks of `size` characters, or the error it fails with. */
async function readCsv(text: string, { delimiter = ",", size = text.length || 1 }: { delimiter?: string; size?: number } = {}) {
	const csv = csvRecords(Readable.from(pieces(text, size).map((piece) => Buffer.from(piece))), delimiter, "test.csv");
	const rows: Record<string, string>[] = [];
	for await (const row of csv.records) rows.push(row);
	return { columns: csv.columns(), rows };
}

async function csvError(text: string, size?: number): Promise<Error> {
	return readCsv(text, { size }).then(
		() => {
			throw new Error("read without an error");
		},
		(err: Error) => err
	);
}

describe("csvRecords", () => {
	const text = '\ufeffName,Name, \r\n"x, y","say ""hi"""\r\n"multi\nline",2,3,extra\r\n\r\nshort\n';

	it("reads quoted fields, a BOM, CRLF, a blank line and ragged rows the same, whatever the chunks", async () => {
		const expected = {
			// A blank header name becomes column_N, a repeated one gets a suffix.
			columns: ["Name", "Name_2", "column_3"],
			rows: [
				{ Name: "x, y", Name_2: 'say "hi"', column_3: "" },
				// A cell beyond the header is dropped; a short row is padded with "".
				{ Name: "multi\nline", Name_2: "2", column_3: "3" },
				{ Name: "short", Name_2: "", column_3: "" }
			]
		};
		for (const size of [1, 2, 5, text.length]) expect(await readCsv(text, { size })).toEqual(expected);
	});

	it("takes any single-character delimiter, quoted where it is data", async () => {
		for (const delimiter of [";", "\t", "|"]) {
			const d = delimiter;
			const table = `id${d}note\n1${d}"a${d}b"\n2${d}a,b\n`;
			expect(await readCsv(table, { delimiter, size: 3 })).toEqual({
				columns: ["id", "note"],
				rows: [{ id: "1", note: `a${d}b` }, { id: "2", note: "a,b" }]
			});
		}
	});

	it("ends rows at CRLF, LF or CR alike, mixed in one file, and keeps line breaks inside quotes", async () => {
		expect(await readCsv('a,b\r1,2\n3,4\r\n"x\r\ny",5\r', { size: 1 })).toEqual({
			columns: ["a", "b"],
			rows: [{ a: "1", b: "2" }, { a: "3", b: "4" }, { a: "x\r\ny", b: "5" }]
		});
	});

	it("drops the BOM only at the start, and blank lines only when they are empty", async () => {
		expect(await readCsv("\ufeffa\n\n\n \n\ufeffb\n\n")).toEqual({ columns: ["a"], rows: [{ a: " " }, { a: "\ufeffb" }] });
		expect(await readCsv("")).toEqual({ columns: [], rows: [] });
		expect(await readCsv("only,header\n")).toEqual({ columns: ["only", "header"], rows: [] });
	});

	it("keeps a quote inside an unquoted field as a character, and an empty quoted field as an empty cell", async () => {
		expect(await readCsv('a,b\n5" disk,x"y\n"",""\n')).toEqual({
			columns: ["a", "b"],
			rows: [{ a: '5" disk', b: 'x"y' }, { a: "", b: "" }]
		});
	});

	it("names an unterminated quote and the line its record starts on, without quoting the file", async () => {
		const csv = csvRecords(Readable.from([Buffer.from('a\n"open secret')]), ",", "bad.csv");
		const error = await (async () => {
			for await (const row of csv.records) void row;
		})().catch((err: unknown) => err);
		expect(error).toBeInstanceOf(StageInputError);
		expect((error as Error).message).toBe("CSV bad.csv has an unterminated quoted field in the record starting on line 2");
	});

	it("counts the lines before an unterminated quote: records spanning lines, blank lines, a quote in a later field", async () => {
		const cases: Array<[string, number]> = [
			['a,b\n1,2\n3,"open\nmore\nlines', 3],
			['a\n"x\ny"\n\n\n"open\n\nmore', 6],
			['a\r\nb\r\n\r\n"open', 4],
			['"open', 1]
		];
		for (const [text, line] of cases)
			for (const size of [1, text.length]) expect((await csvError(text, size)).message).toBe(`CSV test.csv has an unterminated quoted field in the record starting on line ${line}`);
	});
});

describe("formatCsv", () => {
	it("quotes what needs it and writes values as they read back", async () => {
		const columns = ["name", "a.b", "flag", "n", "none", "obj", "when"];
		const records = [
			{ name: "plain", "a.b": 1.5, flag: true, n: 0, none: null, obj: { x: [1] }, when: new Date(Date.UTC(2024, 0, 2)) },
			{ name: 'say "hi", ok', "a.b": " padded", flag: false, n: -3, obj: [], when: "line\nbreak" },
			{ name: "cr\ronly", "a.b": "", flag: null, n: 10n, none: undefined, obj: "", when: "trail " }
		];
		const text = formatCsv(records, columns);
		expect(text).toBe(
			"name,a.b,flag,n,none,obj,when\n" +
				'plain,1.5,true,0,,"{""x"":[1]}",2024-01-02T00:00:00.000Z\n' +
				'"say ""hi"", ok"," padded",false,-3,,[],"line\nbreak"\n' +
				'"cr\ronly",,,10,,,"trail "\n'
		);
		// What it writes, csvRecords reads back cell for cell (as text).
		expect(await readCsv(text, { size: 7 })).toEqual({
			columns,
			rows: records.map((record) =>
				Object.fromEntries(columns.map((column) => {
					const value = (record as Record<string, unknown>)[column];
					return [column, value === null || value === undefined ? "" : value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value)];
				}))
			)
		});
	});

	it("writes the header line alone for no records, and honours another delimiter", () => {
		expect(formatCsv([], ["a", "b c"])).toBe("a,b c\n");
		expect(formatCsv([{ a: "x;y", b: "z,w" }], ["a", "b"], ";")).toBe('a;b\n"x;y";z,w\n');
	});
});

describe("limitBytes", () => {
	it("fails the stream once it passes the limit, with the limit's error", async () => {
		const limited = limitBytes(Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), 100, "data source", "s3://b/k.csv");
		const error = await (async () => {
			for await (const chunk of limited) void chunk;
		})().catch((err: unknown) => err);
		expect(error).toMatchObject({ code: "OBJECT_TOO_LARGE", retryable: false });
		expect((error as Error).message).toMatch(/^OBJECT_TOO_LARGE: data source s3:\/\/b\/k\.csv is more than 100 bytes/);
	});
});

describe("parseS3Url", () => {
	it("takes a bucket and a key, the key as written", () => {
		expect(parseS3Url("s3://my.bucket-1/a/b c%20d.csv", "data source")).toEqual({ bucket: "my.bucket-1", key: "a/b c%20d.csv" });
		expect(parseS3Url(" S3://bucket/x.json ", "data source")).toEqual({ bucket: "bucket", key: "x.json" });
	});
});

describe("s3Failure", () => {
	const href = "s3://bucket/data.csv";
	const answer = (name: string, status: number, fault: "client" | "server" = status >= 500 ? "server" : "client") =>
		new S3ServiceException({ name, $fault: fault, $metadata: { httpStatusCode: status }, message: `the store's own words for ${name}` });

	it("fails at once on a missing object or bucket, a refused credential or a bad request", () => {
		const cases: [unknown, string, RegExp][] = [
			[new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "m" }), S3_NOT_FOUND, /^data source s3:\/\/bucket\/data\.csv does not exist \(NoSuchKey, HTTP 404\)$/],
			[new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: "m" }), S3_NOT_FOUND, /bucket bucket does not exist \(NoSuchBucket, HTTP 404\)/],
			[answer("NotFound", 404), S3_NOT_FOUND, /does not exist \(NotFound, HTTP 404\)/],
			[new AccessDenied({ $metadata: { httpStatusCode: 403 }, message: "m" }), S3_ACCESS_DENIED, /refused the agent's credential \(AccessDenied, HTTP 403\)/],
			[answer("InvalidAccessKeyId", 403), S3_ACCESS_DENIED, /InvalidAccessKeyId/],
			[answer("SignatureDoesNotMatch", 403), S3_ACCESS_DENIED, /SignatureDoesNotMatch/],
			[answer("InvalidArgument", 400), S3_REQUEST_REFUSED, /S3 refused the request \(InvalidArgument, HTTP 400\)/]
		];
		for (const [err, code, message] of cases) {
			const failure = s3Failure(err, href, "data source", "bucket");
			expect(failure).toBeInstanceOf(StageInputError);
			expect(failure).toMatchObject({ code, retryable: false });
			expect(failure.message).toMatch(message);
			expect(failure.message).not.toMatch(/own words/);
		}
	});

	it("leaves throttling, 5xx answers, an expired session and no answer at all to the task's retries", () => {
		const cases = [
			answer("SlowDown", 503),
			answer("ServiceUnavailable", 503),
			answer("InternalError", 500),
			answer("TooManyRequests", 429),
			answer("ExpiredToken", 400),
			answer("RequestTimeTooSkewed", 403),
			Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" })
		];
		for (const err of cases) {
			const failure = s3Failure(err, href, "data source", "bucket");
			expect(failure).not.toBeInstanceOf(StageInputError);
			expect(failure.message).toContain(href);
			expect(failure.message).toMatch(/may pass on a retry/);
		}
	});

	it("passes a stage's own failure through", () => {
		const own = new StageInputError("CSV x.csv has an unterminated quoted field");
		expect(s3Failure(own, href, "output", "bucket")).toBe(own);
	});
});
