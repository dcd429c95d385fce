/**
 * A failure that the same input will always reproduce: a bad source, format, schema or parameter, or data that
 * fails validation. `retryable: false` (the flag Moleculer errors carry too) tells the caller that spending the
 * task's retries on it is pointless; any other error (disk full, too many open files) may pass on a retry.
 * `code`, when set, is a stable name a caller can match on (e.g. PATH_OUTSIDE_DATA_ROOT) without parsing the text.
 */
export class StageInputError extends Error {
	readonly retryable = false;
	readonly code?: string;

	constructor(message: string, code?: string) {
		super(message);
		this.name = "StageInputError";
		if (code !== undefined) this.code = code;
	}
}
