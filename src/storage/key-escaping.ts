/**
 * NeDB (and MongoDB) refuse field names that contain "." or start with "$", but task payloads,
 * results and run inputs are user JSON that may use any key. Keys are escaped on the way into a
 * document store and unescaped on the way out ("%" itself is escaped, so the mapping is lossless).
 */
import { mapContainers, someKey, type Container } from "./json-walk";

const NEEDS_ESCAPE = /[.%]|^\$/;
const NEEDS_UNESCAPE = /%(25|2E|24)/;

function escapeKey(key: string): string {
	return key.replace(/%/g, "%25").replace(/\./g, "%2E").replace(/^\$/, "%24");
}

function unescapeKey(key: string): string {
	return key.replace(/%(2E|24|25)/g, (_m, code: string) => (code === "2E" ? "." : code === "24" ? "$" : "%"));
}

/** The node with its keys renamed and its children replaced by their mapped forms; the same node when nothing changed. */
function renameKeys(needs: RegExp, rename: (key: string) => string) {
	return (node: Container, mappedChild: (child: unknown) => unknown): unknown => {
		if (Array.isArray(node)) {
			let copy: unknown[] | undefined;
			node.forEach((item, i) => {
				const next = mappedChild(item);
				if (next !== item) (copy ??= [...node])[i] = next;
			});
			return copy ?? node;
		}
		// A fresh object in key order, never a copy renamed in place: a renamed key may be another key's
		// old name ("a.b" → "a%2Eb" next to a real "a%2Eb"), and deleting that old name would lose a value.
		const copy: Record<string, unknown> = {};
		let changed = false;
		for (const [key, item] of Object.entries(node)) {
			const next = mappedChild(item);
			const newKey = needs.test(key) ? rename(key) : key;
			if (next !== item || newKey !== key) changed = true;
			copy[newKey] = next;
		}
		return changed ? copy : node;
	};
}

/** Maps only documents that have a key to rename: the others (nearly all) come back as they are, uncopied. */
function mapKeys(value: unknown, needs: RegExp, rename: (key: string) => string): unknown {
	if (!someKey(value, key => needs.test(key))) return value;
	return mapContainers(value, renameKeys(needs, rename));
}

/** Escapes keys at every depth; returns the same object when nothing needed escaping. */
export function escapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_ESCAPE, escapeKey) as T;
}

export function unescapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_UNESCAPE, unescapeKey) as T;
}
