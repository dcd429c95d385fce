/**
 * The reference worker's streamed reading: a JSON array and a CSV file read in chunks of any size give what the
 * whole-text parsers give; S3 URLs name a bucket and a key and nothing else; what an S3 failure means for the task
 * (the SDK's own exception classes, built as its deserialisers build them from an answer).
 */
import { Readable } from "node:stream";
import { AccessDenied, NoSuchBucket, NoSuchKey, S3ServiceException } from "@aws-sdk/client-s3";
import { parseCsv } from "../../agents/csv";
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

describe("csvRecords", () => {
	const text = '\ufeffName,Name, \r\n"x, y","say ""hi"""\r\n"multi\nline",2,3,extra\r\n\r\nshort\n';

	it("reads what parseCsv reads, whatever the chunks", async () => {
		const expected = parseCsv(text);
		for (const size of [1, 5, text.length]) {
			const csv = csvRecords(Readable.from(pieces(text, size).map((piece) => Buffer.from(piece))), ",", "test.csv");
			const rows: Record<string, string>[] = [];
			for await (const row of csv.records) rows.push(row);
			expect({ columns: csv.columns(), rows }).toEqual(expected);
		}
	});

	it("names an unterminated quote without quoting the file", async () => {
		const csv = csvRecords(Readable.from([Buffer.from('a\n"open secret')]), ",", "bad.csv");
		const error = await (async () => {
			for await (const row of csv.records) void row;
		})().catch((err: unknown) => err);
		expect(error).toBeInstanceOf(StageInputError);
		expect((error as Error).message).toBe("CSV bad.csv has an unterminated quoted field");
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
