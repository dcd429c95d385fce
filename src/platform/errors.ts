/**
 * Errors that reach a client. Services throw these; the gateway turns them into the contract's
 * `{ error: { code, message, details } }` body with the HTTP status in `code`.
 */
import { Errors } from "moleculer";
import type { ErrorCode, FieldError } from "../types";

export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
	BAD_REQUEST: 400,
	UNAUTHORIZED: 401,
	FORBIDDEN: 403,
	NOT_FOUND: 404,
	CONFLICT: 409,
	PAYLOAD_TOO_LARGE: 413,
	VALIDATION_ERROR: 422,
	RATE_LIMITED: 429,
	QUOTA_EXCEEDED: 429,
	NOT_READY: 503,
	INTERNAL_ERROR: 500
};

export class ApiError extends Errors.MoleculerClientError {
	constructor(code: ErrorCode, message: string, details?: unknown) {
		super(message, ERROR_STATUS[code], code, details);
		this.name = "ApiError";
	}
}

export const notFound = (what: string, id: string) => new ApiError("NOT_FOUND", `${what} '${id}' not found`, { id });
export const conflict = (message: string, details?: unknown) => new ApiError("CONFLICT", message, details);
export const forbidden = (message = "Not allowed") => new ApiError("FORBIDDEN", message);
export const unauthorized = (message = "Authentication required") => new ApiError("UNAUTHORIZED", message);
export const invalid = (fields: FieldError[]) =>
	new ApiError("VALIDATION_ERROR", `Invalid ${fields.map(f => f.field).join(", ")}`, fields);
