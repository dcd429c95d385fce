/**
 * Any error → the contract's `{ error: { code, message, details } }` and an HTTP status.
 * Internal failures keep their details out of the response (they are logged instead).
 */
import { ERROR_STATUS } from "../platform/errors";
import type { ErrorBody, ErrorCode, FieldError } from "../types";

interface AnyError {
	name?: string;
	message?: string;
	code?: number | string;
	type?: string;
	status?: number;
	data?: unknown;
}

export interface ErrorResponse {
	status: number;
	body: ErrorBody;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
	400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
	413: "PAYLOAD_TOO_LARGE", 422: "VALIDATION_ERROR", 429: "RATE_LIMITED", 503: "NOT_READY"
};

/** fastest-validator's messages → one entry per bad field. */
function fieldErrors(data: unknown): FieldError[] {
	if (!Array.isArray(data)) return [];
	return data.map((d: { field?: string; message?: string; type?: string }) => ({
		field: d.field ?? "body",
		message: d.message ?? "invalid",
		type: d.type
	}));
}

export function toErrorResponse(err: AnyError): ErrorResponse {
	// body-parser
	if (err.type === "entity.parse.failed")
		return { status: 400, body: { error: { code: "BAD_REQUEST", message: "Malformed JSON body" } } };
	if (err.type === "entity.too.large")
		return { status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE", message: "Request body too large" } } };

	if (err.name === "ValidationError" || err.type === "VALIDATION_ERROR") {
		const details = fieldErrors(err.data);
		const message = details.length ? `Invalid ${details.map(d => d.field).join(", ")}` : err.message ?? "Invalid request";
		return { status: 422, body: { error: { code: "VALIDATION_ERROR", message, details } } };
	}

	const status = typeof err.code === "number" && err.code >= 400 && err.code < 600 ? err.code : (err.status ?? 500);
	if (status >= 500 && status !== 503)
		return { status, body: { error: { code: "INTERNAL_ERROR", message: status === 504 ? "Upstream timeout" : "Internal server error" } } };

	// One of our codes (src/platform/errors.ts) with its own status keeps its name: 429 is RATE_LIMITED or QUOTA_EXCEEDED.
	const ours = err.type && Object.hasOwn(ERROR_STATUS, err.type) && ERROR_STATUS[err.type as ErrorCode] === status;
	const code = (ours ? err.type : CODE_BY_STATUS[status] ?? "BAD_REQUEST") as ErrorCode;
	const body: ErrorBody = { error: { code, message: err.message ?? code } };
	if (err.data !== undefined && err.data !== null) body.error.details = err.data;
	return { status, body };
}

/**
 * The headers that go with a quota's figures (src/domain/quotas.ts): on an admitted submission
 * `X-Quota-Limit` and `X-Quota-Remaining`, on a refusal (QUOTA_EXCEEDED's details) `Retry-After` too.
 */
export function quotaHeaders(view: unknown): Record<string, string> {
	const v = (view ?? {}) as { limit?: unknown; remaining?: unknown; retry_after_s?: unknown };
	const headers: Record<string, string> = {};
	if (typeof v.limit === "number") headers["X-Quota-Limit"] = String(v.limit);
	if (typeof v.remaining === "number") headers["X-Quota-Remaining"] = String(v.remaining);
	if (typeof v.retry_after_s === "number") headers["Retry-After"] = String(v.retry_after_s);
	return headers;
}
