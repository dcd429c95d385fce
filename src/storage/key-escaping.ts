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

function mapKeys(value: unknown, needs: RegExp, rename: (key: string) => string): unknown {
	if (Array.isArray(value)) {
		let copy: unknown[] | undefined;
		value.forEach((item, i) => {
			const mapped = mapKeys(item, needs, rename);
			if (mapped !== item) (copy ??= [...value])[i] = mapped;
		});
		return copy ?? value;
	}
	if (value === null || typeof value !== "object" || value instanceof Date) return value;
	let copy: Record<string, unknown> | undefined;
	for (const [key, item] of Object.entries(value)) {
		const mapped = mapKeys(item, needs, rename);
		const newKey = needs.test(key) ? rename(key) : key;
		if (mapped !== item || newKey !== key) {
			copy ??= { ...(value as Record<string, unknown>) };
			if (newKey !== key) delete copy[key];
			copy[newKey] = mapped;
		}
	}
	return copy ?? value;
}

/** Escapes keys at every depth; returns the same object when nothing needed escaping. */
export function escapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_ESCAPE, escapeKey) as T;
}

export function unescapeKeys<T>(value: T): T {
	return mapKeys(value, NEEDS_UNESCAPE, unescapeKey) as T;
}
