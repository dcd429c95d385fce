/**
 * Walks over JSON documents for the document stores' encodings (key-escaping.ts, nedb-arrays.ts).
 * Both are iterative: a document may be nested as deep as the API allows, or deeper, and the code
 * that stores it must not overflow its stack.
 */
export type Container = Record<string, unknown> | unknown[];

export const isContainer = (value: unknown): value is Container => value !== null && typeof value === "object" && !(value instanceof Date);

/**
 * Maps every container, children before parents; `mapNode` gets a node and a function giving its
 * children's mapped forms. A node that `mapNode` returns as is keeps its identity.
 */
export function mapContainers(value: unknown, mapNode: (node: Container, mappedChild: (child: unknown) => unknown) => unknown): unknown {
	if (!isContainer(value)) return value;
	const mapped = new Map<object, unknown>();
	const mappedChild = (child: unknown) => (isContainer(child) ? mapped.get(child) : child);
	const stack: Array<{ node: Container; expanded: boolean }> = [{ node: value, expanded: false }];
	while (stack.length) {
		const top = stack[stack.length - 1];
		if (!top.expanded) {
			top.expanded = true;
			for (const child of Object.values(top.node)) if (isContainer(child) && !mapped.has(child)) stack.push({ node: child, expanded: false });
			continue;
		}
		stack.pop();
		if (!mapped.has(top.node)) mapped.set(top.node, mapNode(top.node, mappedChild));
	}
	return mapped.get(value);
}

/**
 * True when some container at any depth (`value` itself included) passes `test`, given its depth
 * (0 for `value`). Reads only, allocates no copy, and stops at the first: most documents need no
 * encoding at all, and finding that out is much cheaper than mapping them.
 */
export function someContainer(value: unknown, test: (node: Container, depth: number) => boolean): boolean {
	if (!isContainer(value)) return false;
	const stack: Array<[Container, number]> = [[value, 0]];
	while (stack.length) {
		const [node, depth] = stack.pop()!;
		if (test(node, depth)) return true;
		for (const child of Object.values(node)) if (isContainer(child)) stack.push([child, depth + 1]);
	}
	return false;
}

/** True when some object key at any depth passes `test`. */
export function someKey(value: unknown, test: (key: string) => boolean): boolean {
	return someContainer(value, node => !Array.isArray(node) && Object.keys(node).some(test));
}
