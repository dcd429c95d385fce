/**
 * A JSON array read element by element as its text streams in, so that a large array of rows is never one
 * string: only the element being read is held. Each element is handed to JSON.parse whole.
 */

/** Where a document stops being valid JSON (1-based); the message is the caller's, with no file content. */
export class JsonPosition extends Error {
	constructor(
		readonly line: number,
		readonly column: number
	) {
		super(`line ${line}, column ${column}`);
	}
}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Where JSON.parse gave up, as an offset into its text (its message is not passed on: it may quote the text). */
export function jsonErrorOffset(err: unknown): number | undefined {
	const at = /at position (\d+)/.exec(err instanceof Error ? err.message : "")?.[1];
	return at === undefined ? undefined : Number(at);
}

export class JsonArraySplitter {
	private state: "before" | "inside" | "after" = "before";
	private depth = 0;
	private inString = false;
	private escaped = false;
	/** The start of the element being read, carried over from earlier chunks. */
	private pending = "";
	private line = 1;
	private column = 0;
	private elementLine = 1;
	private elementColumn = 1;
	private count = 0;

	/** Feeds the next piece of text; answers the elements it completed. Throws JsonPosition where it breaks. */
	push(text: string): unknown[] {
		const out: unknown[] = [];
		let start = 0;
		for (let i = 0; i < text.length; i++) {
			const c = text.charCodeAt(i);
			if (c === 0x0a) {
				this.line++;
				this.column = 0;
			} else this.column++;
			if (this.state !== "inside") {
				if (SPACE.has(c) || c === 0xfeff) continue;
				if (this.state === "before" && c === 0x5b /* [ */) {
					this.state = "inside";
					this.markElement();
					start = i + 1;
					continue;
				}
				throw new JsonPosition(this.line, this.column);
			}
			if (this.inString) {
				if (this.escaped) this.escaped = false;
				else if (c === 0x5c /* \ */) this.escaped = true;
				else if (c === 0x22 /* " */) this.inString = false;
			} else if (c === 0x22) this.inString = true;
			else if (c === 0x7b /* { */ || c === 0x5b /* [ */) this.depth++;
			else if ((c === 0x7d /* } */ || c === 0x5d) && this.depth > 0) this.depth--;
			else if (this.depth === 0 && (c === 0x2c /* , */ || c === 0x5d /* ] */)) {
				const piece = this.pending + text.slice(start, i);
				this.pending = "";
				const last = c === 0x5d;
				// `[]` is an empty array; an empty element anywhere else is a stray comma.
				if (!(last && this.count === 0 && piece.trim() === "")) out.push(this.parse(piece));
				if (last) this.state = "after";
				this.markElement();
				start = i + 1;
			}
		}
		if (this.state === "inside") this.pending += text.slice(start);
		return out;
	}

	/** Whether the text began with `[` (false while only blanks came). */
	get isArray(): boolean {
		return this.state !== "before";
	}

	/** The end of the text: the array must be closed. */
	end(): void {
		if (this.state === "inside") throw new JsonPosition(this.line, this.column + 1);
	}

	/** The next element's text starts right after the current character (the `[` or `,`). */
	private markElement(): void {
		this.elementLine = this.line;
		this.elementColumn = this.column + 1;
	}

	private parse(piece: string): unknown {
		try {
			const value: unknown = JSON.parse(piece);
			this.count++;
			return value;
		} catch (err) {
			// Without an offset (V8 gives none for some errors) the element's first character is named.
			const offset = jsonErrorOffset(err) ?? piece.length - piece.trimStart().length;
			const before = piece.slice(0, offset).split("\n");
			const line = this.elementLine + before.length - 1;
			const column = before.length === 1 ? this.elementColumn + before[0].length : before[before.length - 1].length + 1;
			throw new JsonPosition(line, column);
		}
	}
}
