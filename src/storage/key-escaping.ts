/**
 * NeDB (and MongoDB) refuse field names that contain "." or start with "$", but task payloads,
 * results and run inputs are user JSON that may use any key. Keys are escaped on the way into a
 * document store and unescaped on the way out ("%" itself is escaped, so the mapping is lossless).
 */
const NEEDS_ESCAPE = /[.%]|^\$/;
const NEEDS_UNESCAPE = /%(25|2E|24)/;

function escapeKey(key: string): string {
	return key.replace(/%/g, "%25").replace(/\./g, "%2E").replace(/^\$/, "%24");
}

function unescapeKey(key: string): string {
	return key.replace(/%(2E|24|25)/g, (_m, code: string) => (code === "2E" ? "." : code === "24" ? "$" : "%"));
}

type Container = Record<string, unknown> | unknown[];

const isContainer = (value: unknown): value is Container => value !== null && typeof value === "object" && !(value instanceof Date);

/** The node with its keys renamed and its children replaced by their mapped forms; the same node when nothing changed. */
function mapNode(node: Container, mapped: Map<object, unknown>, needs: RegExp, rename: (key: string) => string): unknown {
	if (Array.isArray(node)) {
		let copy: unknown[] | undefined;
		node.forEach((item, i) => {
			const next = isContainer(item) ? mapped.get(item) : item;
			if (next !== item) (copy ??= [...node])[i] = next;
		});
		return copy ?? node;
	}
	// A fresh object in key order, never a copy renamed in place: a renamed key may be another key's
	// old name ("a.b" → "a%2Eb" next to a real "a%2Eb"), and deleting that old name would lose a value.
	const copy: Record<string, unknown> = {};
	let changed = false;
	for (const [key, item] of Object.entries(node)) {
		const next = isContainer(item) ? mapped.get(item) : item;
		const newKey = needs.test(key) ? rename(key) : key;
		if (next !== item || newKey !== key) changed = true;
		copy[newKey] = next;
	}
	return changed ? copy : node;
}

/**
 * Iterative, children before parents (an explicit stack, never recursion: a document nested
 * thousands of levels deep must not overflow the stack of the code that stores it).
 */
function mapKeys(value: unknown, needs: RegExp, rename: (key: string) => string): unknown {
	if (!isContainer(value)) return value;
	const mapped = new Map<object, unknown>();
	const stack: Array<{ node: Container; expanded: boolean }> = [{ node: value, expanded: false }];
	while (stack.length) {
		const top = stack[stack.length - 1];
		if (!top.expanded) {
			top.expanded = true;
			for (const child of Object.values(top.node)) if (isContainer(child) && !mapped.has(child)) stack.push({ node: child, expanded: false });
			continue;
		}
		stack.pop();
		if (!mapped.has(top.node)) mapped.set(top.node, mapNode(top.node, mapped, needs, rename));
	}
	return mapped.get(value);
}

/** Escapes keys at every depth; returns the same object when nothing needed escaping. */
export function escapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_ESCAPE, escapeKey) as T;
}

export function unescapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_UNESCAPE, unescapeKey) as T;
}
