/**
 * Every call's params, checked before any of our handlers sees them, whoever sent them (the
 * gateway or another node): at most MAX_JSON_DEPTH levels of nesting, and no `__proto__`,
 * `constructor` or `prototype` key anywhere. A body that breaks either is a 422 naming the path;
 * nothing deeper or stranger is ever stored, so no list can trip over it later.
 *
 * The walk is iterative: a hostile payload nested thousands of levels deep must not overflow the
 * stack of the code that refuses it.
 */
import type { Context, Middleware } from "moleculer";
import { invalid } from "../errors";
import type { FieldError } from "../../types";

/** Objects and arrays within objects and arrays: the body itself is level 1. */
export const MAX_JSON_DEPTH = 32;
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

const fieldPath = (path: string, key: string | number) => (typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key);

/** The first problem found, or null. `at`: where `value` sits in the params it travels in (its path and level). */
export function checkPayload(value: unknown, maxDepth = MAX_JSON_DEPTH, at: { path: string; depth: number } = { path: "", depth: 1 }): FieldError | null {
	const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: at.path, depth: at.depth }];
	while (stack.length) {
		const { value: node, path, depth } = stack.pop()!;
		if (node === null || typeof node !== "object") continue;
		if (depth > maxDepth) return { field: path || "body", message: `nested deeper than ${maxDepth} levels`, type: "depth" };
		if (Array.isArray(node)) {
			node.forEach((item, i) => stack.push({ value: item, path: fieldPath(path, i), depth: depth + 1 }));
			continue;
		}
		for (const key of Object.keys(node)) {
			if (FORBIDDEN_KEYS.has(key)) return { field: fieldPath(path, key), message: `the key '${key}' is not allowed`, type: "forbiddenKey" };
			stack.push({ value: (node as Record<string, unknown>)[key], path: fieldPath(path, key), depth: depth + 1 });
		}
	}
	return null;
}

type Handler = (ctx: Context) => Promise<unknown>;

export function payloadGuardMiddleware(): Middleware {
	return {
		name: "PayloadGuard",
		localAction(next: Handler, action: { name: string; visibility?: string }) {
			// Moleculer's own `$` actions, and ones no other node can call (moleculer-web's `rest` gets the raw req/res).
			if (action.name.startsWith("$") || action.visibility === "private" || action.visibility === "protected") return next;
			return function guarded(ctx: Context) {
				const problem = checkPayload(ctx.params);
				return problem ? Promise.reject(invalid([problem])) : next(ctx);
			};
		}
	} as unknown as Middleware;
}
