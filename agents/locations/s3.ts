/**
 * s3://bucket/key locations, read and written through the AWS SDK. The endpoint, region and credential are the
 * operator's (AWS_ENDPOINT_URL_S3, S3_FORCE_PATH_STYLE, the standard AWS_* variables); a task names a bucket and a
 * key only, checked here so that no URL reaches another host: no user, port, query or fragment, no access point
 * or other ARN, none of the bucket-name forms the SDK routes to other endpoints, no `.`/`..` key segments.
 * Objects are streamed both ways: GetObject's body goes straight to the parsers, and writes go up through
 * lib-storage's Upload in 8 MiB parts (a multipart upload past one part; at most two parts held at once).
 */
import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { StageInputError } from "../stage-error";
import { limitBytes, tooLarge } from "./byte-limit";
import { s3Failure } from "./s3-errors";
import type { DataLocation, LocationParser, OpenedSource, WriteResult } from "./types";

/** The operator's store (config.s3): unset endpoint = AWS itself. */
export interface S3Settings {
	endpoint?: string;
	forcePathStyle: boolean;
}

/** lib-storage's part size (S3's minimum is 5 MiB) and how many parts go up at once. */
export const S3_PART_BYTES = 8 * 1024 * 1024;
const S3_PARTS_AT_ONCE = 2;

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Reserved forms the SDK or S3 treat as something else than a plain bucket (access point aliases, directory buckets…). */
const RESERVED_BUCKET = /^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/;

function invalid(location: string, what: string, why: string): StageInputError {
	return new StageInputError(`${what} ${location} is not a usable s3:// location: ${why}`);
}

/** `s3://bucket/key` → its parts; anything that could name more than a bucket and a key is refused. */
export function parseS3Url(location: string, what: string): { bucket: string; key: string } {
	const match = /^s3:\/\/([^/]*)\/(.*)$/is.exec(location.trim());
	if (!match) throw invalid(location, what, "expected s3://bucket/key");
	const [, bucket, key] = match;
	if (!BUCKET.test(bucket) || bucket.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(bucket) || RESERVED_BUCKET.test(bucket)) {
		throw invalid(location, what, "the bucket must be a plain S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)");
	}
	if (key === "" || key.endsWith("/")) throw invalid(location, what, "the key names a folder, not an object");
	if (Buffer.byteLength(key, "utf8") > 1024) throw invalid(location, what, "the key is longer than 1024 bytes");
	// eslint-disable-next-line no-control-regex
	if (/[\u0000-\u001f\u007f?#]/.test(key)) throw invalid(location, what, "the key holds a control character, ? or #");
	if (key.split("/").some((segment) => segment === "." || segment === "..")) {
		throw invalid(location, what, "the key has a . or .. segment");
	}
	return { bucket, key };
}

const clients = new Map<string, Promise<S3Client>>();

/** One client per store and process: the SDK loads (and keeps its connections) only once something is on S3. */
function clientFor(settings: S3Settings): Promise<S3Client> {
	const id = `${settings.endpoint ?? ""}|${settings.forcePathStyle}`;
	let client = clients.get(id);
	if (!client) {
		client = import("@aws-sdk/client-s3").then(
			({ S3Client: Client }) =>
				new Client({
					...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
					forcePathStyle: settings.forcePathStyle,
					// Many S3-compatible stores refuse the SDK's newer default checksums; the variable still decides.
					...(settings.endpoint && !process.env.AWS_REQUEST_CHECKSUM_CALCULATION
						? { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" }
						: {})
				})
		);
		clients.set(id, client);
	}
	return client;
}

const CONTENT_TYPES: Record<string, string> = { json: "application/json", jsonl: "application/x-ndjson", ndjson: "application/x-ndjson", csv: "text/csv" };

class S3Location implements DataLocation {
	readonly href: string;
	readonly basename: string;

	constructor(
		private readonly settings: S3Settings,
		readonly given: string,
		private readonly bucket: string,
		private readonly key: string
	) {
		this.href = `s3://${bucket}/${key}`;
		this.basename = key.slice(key.lastIndexOf("/") + 1);
	}

	sibling(name: string): DataLocation {
		const key = this.key.slice(0, this.key.lastIndexOf("/") + 1) + name;
		parseS3Url(`s3://${this.bucket}/${key}`, "file");
		return new S3Location(this.settings, `s3://${this.bucket}/${key}`, this.bucket, key);
	}

	async open(what: string, maxBytes: number): Promise<OpenedSource> {
		const [client, { GetObjectCommand }] = await Promise.all([clientFor(this.settings), import("@aws-sdk/client-s3")]);
		let answer;
		try {
			answer = await client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key }));
		} catch (err) {
			throw s3Failure(err, this.href, what, this.bucket);
		}
		const body = answer.Body as Readable | undefined;
		if (!body) throw new Error(`S3 answered ${what} ${this.href} without a body; the task may pass on a retry`);
		if (answer.ContentLength !== undefined && answer.ContentLength > maxBytes) {
			body.destroy();
			throw tooLarge(what, this.href, maxBytes, answer.ContentLength);
		}
		const version = `${answer.ETag ?? ""}:${answer.VersionId ?? ""}:${answer.ContentLength ?? ""}`;
		return { stream: limitBytes(body, maxBytes, what, this.href), version };
	}

	async write(what: string, chunks: AsyncIterable<string>): Promise<WriteResult> {
		const [client, { Upload }] = await Promise.all([clientFor(this.settings), import("@aws-sdk/lib-storage")]);
		let bytes = 0;
		async function* buffers(): AsyncGenerator<Buffer> {
			for await (const chunk of chunks) {
				const buffer = Buffer.from(chunk, "utf8");
				bytes += buffer.length;
				yield buffer;
			}
		}
		const extension = this.basename.slice(this.basename.lastIndexOf(".") + 1).toLowerCase();
		const upload = new Upload({
			client,
			params: { Bucket: this.bucket, Key: this.key, Body: Readable.from(buffers()), ContentType: CONTENT_TYPES[extension] ?? "application/octet-stream" },
			partSize: S3_PART_BYTES,
			queueSize: S3_PARTS_AT_ONCE,
			// A failed upload removes its parts: nothing half-written is left to pay for.
			leavePartsOnError: false
		});
		let parts = 1;
		upload.on("httpUploadProgress", (progress) => {
			if (typeof progress.part === "number" && progress.part > parts) parts = progress.part;
		});
		try {
			await upload.done();
		} catch (err) {
			throw s3Failure(err, this.href, what, this.bucket);
		}
		return { bytes, parts };
	}
}

export function s3Locations(settings: S3Settings): LocationParser {
	return (location, what) => {
		const { bucket, key } = parseS3Url(location, what);
		return new S3Location(settings, location.trim(), bucket, key);
	};
}
