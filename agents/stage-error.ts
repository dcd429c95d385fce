/**
 * A failure that the same input will always reproduce: a bad source, format, schema or parameter, or data that
 * fails validation. `retryable: false` (the flag Moleculer errors carry too) tells the caller that spending the
 * task's retries on it is pointless; any other error (disk full, too many open files) may pass on a retry.
 */
export class StageInputError extends Error {
	readonly retryable = false;

	constructor(message: string) {
		super(message);
		this.name = "StageInputError";
	}
}
