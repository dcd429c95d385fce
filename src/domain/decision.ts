/**
 * What a decide function answers: the change to make to one entity and the effects to run once
 * that change is committed, or a refusal. Decisions are data: the rules that produce them never
 * touch a store, a socket or a clock they were not given, so they can run again after a lost
 * compare-and-set without anything having happened twice.
 */
import type { ErrorCode } from "../types";

/** Why an event cannot apply to the entity as it is: the gateway answers it with `code`'s status. */
export interface Rejection {
	code: Extract<ErrorCode, "CONFLICT" | "FORBIDDEN" | "NOT_FOUND" | "VALIDATION_ERROR" | "UNAUTHORIZED">;
	message: string;
	details?: unknown;
}

export type Decision<T, E> =
	/** `change` null: nothing to write (the effects may still have work to do). */
	| { change: Partial<T> | null; effects: E[] }
	| { reject: Rejection };

export function change<T, E>(fields: Partial<T>, effects: E[] = []): Decision<T, E> {
	return { change: fields, effects };
}

export function noChange<T, E>(effects: E[] = []): Decision<T, E> {
	return { change: null, effects };
}

export function reject<T, E>(code: Rejection["code"], message: string, details?: unknown): Decision<T, E> {
	return { reject: { code, message, ...(details === undefined ? {} : { details }) } };
}

export function isRejection<T, E>(decision: Decision<T, E>): decision is { reject: Rejection } {
	return "reject" in decision;
}
