/**
 * What an S3 failure means for the task. The same request will fail again when the object or bucket is missing,
 * the credential is refused or the request itself is wrong: those fail the stage at once (StageInputError, not
 * retried). Throttling, 5xx answers, timeouts and a store that cannot be reached may pass later: a plain Error,
 * which the task's retries are for. Messages name the s3:// location and the store's error name, never a
 * credential nor the store's own message (a SignatureDoesNotMatch answer carries the string it signed).
 */
import type { StageErrorCode } from "../../src/stage-contract";
import { StageInputError } from "../stage-error";

export const S3_NOT_FOUND: StageErrorCode = "S3_NOT_FOUND";
export const S3_ACCESS_DENIED: StageErrorCode = "S3_ACCESS_DENIED";
export const S3_REQUEST_REFUSED: StageErrorCode = "S3_REQUEST_REFUSED";

const NOT_FOUND = new Set(["NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"]);
const REFUSED_CREDENTIAL = new Set([
	"AccessDenied",
	"InvalidAccessKeyId",
	"SignatureDoesNotMatch",
	"InvalidToken",
	"AllAccessDisabled",
	"AccountProblem",
	"InvalidSecurity"
]);
/** 4xx answers that a later attempt may not get: an expiring session credential is renewed, a clock resynced. */
const TRANSIENT = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed", "ExpiredToken", "ServiceUnavailable", "InternalError"]);

interface ServiceFailure {
	name?: unknown;
	code?: unknown;
	$fault?: unknown;
	$metadata?: { httpStatusCode?: unknown };
}

/**
 * `err` thrown by a request for `href` (`s3://bucket/key`) → the error the stage fails with. Errors that are not
 * the store's answer (a parse error of the stream being uploaded, a size limit) pass through unchanged.
 */
export function s3Failure(err: unknown, href: string, what: string, bucket: string): Error {
	if (err instanceof StageInputError) return err;
	const failure = (typeof err === "object" && err !== null ? err : {}) as ServiceFailure;
	const name = typeof failure.name === "string" ? failure.name : "Error";
	const status = typeof failure.$metadata?.httpStatusCode === "number" ? failure.$metadata.httpStatusCode : undefined;
	const answered = failure.$fault === "client" || failure.$fault === "server" || status !== undefined;
	const reason = status === undefined ? name : `${name}, HTTP ${status}`;
	if (!answered) {
		// No answer at all: the network, the endpoint, or no region or credential on this host. The SDK's own words
		// say which (they hold no secret: an address, "Region is missing", "Could not load credentials…").
		const code = typeof failure.code === "string" ? ` ${failure.code}` : "";
		const detail = err instanceof Error && err.message ? `: ${err.message.slice(0, 200)}` : "";
		return new Error(`cannot reach S3 for ${what} ${href} (${name}${code}${detail}); the task may pass on a retry`);
	}
	if (TRANSIENT.has(name) || status === undefined || status >= 500 || status === 429 || status === 408) {
		return new Error(`S3 did not serve ${what} ${href} (${reason}); the task may pass on a retry`);
	}
	if (name === "NoSuchBucket") return new StageInputError(`${what} ${href}: bucket ${bucket} does not exist (${reason})`, S3_NOT_FOUND);
	if (NOT_FOUND.has(name) || status === 404) return new StageInputError(`${what} ${href} does not exist (${reason})`, S3_NOT_FOUND);
	if (REFUSED_CREDENTIAL.has(name) || status === 401 || status === 403) {
		return new StageInputError(
			`${what} ${href}: S3 refused the agent's credential (${reason}); check its AWS_* credentials and the bucket's policy`,
			S3_ACCESS_DENIED
		);
	}
	return new StageInputError(`${what} ${href}: S3 refused the request (${reason})`, S3_REQUEST_REFUSED);
}
