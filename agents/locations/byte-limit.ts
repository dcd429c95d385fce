/**
 * The one size rule for every object a stage reads: refused before reading when its size is known to be over the
 * limit, and as soon as the stream passes it otherwise (a file that grows, an S3 answer without a length).
 */
import { pipeline, Transform, type Readable } from "node:stream";
import type { StageErrorCode } from "../../src/stage-contract";
import { StageInputError } from "../stage-error";
import { DEFAULT_MAX_OBJECT_BYTES } from "./types";

export const OBJECT_TOO_LARGE: StageErrorCode = "OBJECT_TOO_LARGE";

export function tooLarge(what: string, location: string, maxBytes: number, size?: number): StageInputError {
	const actual = size === undefined ? `more than ${maxBytes}` : String(size);
	return new StageInputError(
		`${OBJECT_TOO_LARGE}: ${what} ${location} is ${actual} bytes, over the limit of ${maxBytes} bytes ` +
			`(parameters.max_object_bytes may lower the agent's limit of ${DEFAULT_MAX_OBJECT_BYTES}, not raise it)`,
		OBJECT_TOO_LARGE
	);
}

/** The stream, failing with `tooLarge` once more than `maxBytes` went through; errors of `source` pass on. */
export function limitBytes(source: Readable, maxBytes: number, what: string, location: string): Readable {
	let seen = 0;
	const counter = new Transform({
		transform(chunk: Buffer, _encoding, done) {
			seen += chunk.length;
			if (seen > maxBytes) done(tooLarge(what, location, maxBytes));
			else done(null, chunk);
		}
	});
	// pipeline destroys both on an error of either, so the reader of `counter` sees it and `source` is released.
	pipeline(source, counter, () => undefined);
	return counter;
}

/** A task may lower the limit (parameters.max_object_bytes), never raise it past the agent's. */
export function maxObjectBytes(value: unknown): number {
	if (value === undefined || value === null) return DEFAULT_MAX_OBJECT_BYTES;
	if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
		throw new StageInputError("parameters.max_object_bytes must be a positive whole number of bytes");
	}
	return Math.min(value, DEFAULT_MAX_OBJECT_BYTES);
}
