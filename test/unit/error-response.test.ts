import { Errors } from "moleculer";
import { ApiError } from "../../src/platform/errors";
import { toErrorResponse } from "../../src/gateway/error-response";

test("validation errors name each field", () => {
	const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
		{ field: "name", message: "The 'name' field is required.", type: "required" },
		{ field: "type", message: "bad", type: "enumValue" }
	]);
	expect(toErrorResponse(err as never)).toEqual({
		status: 422,
		body: { error: { code: "VALIDATION_ERROR", message: "Invalid name, type", details: [
			{ field: "name", message: "The 'name' field is required.", type: "required" },
			{ field: "type", message: "bad", type: "enumValue" }
		] } }
	});
});

test("body-parser failures: 400 and 413", () => {
	expect(toErrorResponse({ type: "entity.parse.failed", status: 400 }).status).toBe(400);
	expect(toErrorResponse({ type: "entity.too.large", status: 413 })).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
});

test("our errors keep their code and details; internal errors hide theirs", () => {
	expect(toErrorResponse(new ApiError("CONFLICT", "illegal", { from: "completed" }) as never)).toEqual({
		status: 409,
		body: { error: { code: "CONFLICT", message: "illegal", details: { from: "completed" } } }
	});
	const internal = toErrorResponse(new Error("db password is hunter2") as never);
	expect(internal).toEqual({ status: 500, body: { error: { code: "INTERNAL_ERROR", message: "Internal server error" } } });
	expect(toErrorResponse(new Errors.ServiceNotAvailableError({ action: "x" }) as never).status).toBe(404);
});
