/**
 * Validation patterns run on RE2 (the re2-wasm package: Google's RE2 built to WebAssembly, no install script, the
 * same module under every Node version), whose matching time is linear in the input: a pattern such as ^(a+)+$
 * cannot stall the agent's event loop the way a backtracking engine does on "aaaa…!". RE2 has no backreferences
 * and no lookaround; patterns that use them are refused up front, naming their field.
 *
 * re2-wasm has a fixed 16 MiB heap and its compiled patterns are not garbage-collected, so a PatternSet belongs
 * to one stage run and is disposed once the run's records are checked.
 */
import type { RegExpEngine, RegExpLike } from "ajv/dist/types";
import { RE2 } from "re2-wasm";
import { StageInputError } from "./stage-error";

export const MAX_PATTERN_LENGTH = 1000;

/**
 * Longer strings are not matched but reported as too long: each one is copied into that fixed heap, which beside
 * the compiled patterns has room for a few MiB; 100 000 characters is far beyond any field a pattern describes.
 */
export const MAX_MATCHED_LENGTH = 100_000;

/** What RE2 says is wrong, without the "Invalid regular expression: /…/u: " that repeats the pattern. */
function reason(err: unknown): string {
	const message = err instanceof Error ? err.message : String(err);
	return message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "");
}

/** Frees the pattern's WebAssembly memory: RE2 objects of re2-wasm have no finalizer (see above). */
function free(re: RE2): void {
	(re as unknown as { wrapper?: { delete?: () => void } }).wrapper?.delete?.();
}

export class PatternSet {
	private readonly compiled = new Map<string, RE2>();

	/** ajv's `code.regExp`: every pattern of the schemas it compiles comes from this set. */
	readonly engine: RegExpEngine = Object.assign(
		(pattern: string, flags: string): RegExpLike => {
			const re = this.compile(pattern, `pattern ${pattern}`, flags);
			const like = { test: (text: string) => text.length <= MAX_MATCHED_LENGTH && re.test(text) };
			// ajv keys compiled patterns by toString(), so it must tell two patterns apart.
			return Object.assign(like, { toString: () => re.toString() });
		},
		// Only read when ajv generates standalone code, which this worker never does.
		{ code: 'require("re2-wasm").RE2' }
	);

	/**
	 * The compiled pattern (once per set and flags), or a StageInputError naming `where`. re2-wasm only runs in
	 * Unicode mode, which is also ajv's default, so "u" is always among the flags.
	 */
	compile(pattern: string, where: string, flags = "u"): RE2 {
		const withUnicode = flags.includes("u") ? flags : `${flags}u`;
		const key = `${withUnicode}/${pattern}`;
		const known = this.compiled.get(key);
		if (known) return known;
		let re: RE2;
		try {
			re = new RE2(pattern, withUnicode);
		} catch (err) {
			if (err instanceof SyntaxError) {
				throw new StageInputError(
					`${where} cannot be used: ${reason(err)} (patterns run on RE2: no backreferences, lookahead or lookbehind)`
				);
			}
			// A WebAssembly abort: the compiled pattern would not fit the engine's memory.
			throw new StageInputError(`${where} is too large for the pattern engine; use fewer or smaller repetitions`);
		}
		this.compiled.set(key, re);
		return re;
	}

	dispose(): void {
		for (const re of this.compiled.values()) free(re);
		this.compiled.clear();
	}
}
