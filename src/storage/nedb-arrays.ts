/**
 * NeDB checks every document it inserts or updates with a walk that visits each array element
 * twice (once per element, once per index), so arrays nested k deep cost 2^k steps on the event
 * loop: one task whose payload held 30 levels of arrays, well within the 32 levels the API takes,
 * froze the node for minutes. Below a document's top-level fields, arrays are therefore stored as
 * objects `{ "%A": length, "0": …, "1": … }`, which NeDB walks once. No stored user key can be
 * "%A": key escaping (key-escaping.ts) has already turned every user "%" into "%25". Top-level
 * fields keep their arrays, so what is queried or sorted on looks the same; documents stored
 * before this encoding (real nested arrays) read back as they are.
 *
 * Both walks are iterative: a document may be nested as deep as the API allows, or deeper.
 */
const ARRAY_MARK = "%A";

type Doc = Record<string, unknown>;
type Container = Doc | unknown[];

const isContainer = (value: unknown): value is Container => value !== null && typeof value === "object" && !(value instanceof Date);

/** Maps every container, children before parents; `mapNode` gets a node and its children's mapped forms. */
function mapTree(value: unknown, mapNode: (node: Container, mappedChild: (child: unknown) => unknown) => unknown): unknown {
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

function encodeNode(node: Container, mappedChild: (child: unknown) => unknown): unknown {
	const out: Doc = Array.isArray(node) ? { [ARRAY_MARK]: node.length } : {};
	for (const [key, child] of Object.entries(node)) out[key] = mappedChild(child);
	return out;
}

/** The same node when nothing below it changed. */
function decodeNode(node: Container, mappedChild: (child: unknown) => unknown): unknown {
	if (Array.isArray(node)) {
		const items = node.map(mappedChild);
		return items.some((item, i) => item !== node[i]) ? items : node;
	}
	if (Object.hasOwn(node, ARRAY_MARK)) return Array.from({ length: Number(node[ARRAY_MARK]) }, (_, i) => mappedChild(node[i]));
	let changed = false;
	const out: Doc = {};
	for (const [key, child] of Object.entries(node)) {
		out[key] = mappedChild(child);
		if (out[key] !== child) changed = true;
	}
	return changed ? out : node;
}

/** A document (or a `$set` of top-level fields) as NeDB stores it. */
export function encodeNestedArrays(doc: Doc): Doc {
	const out: Doc = {};
	for (const [field, value] of Object.entries(doc))
		out[field] = Array.isArray(value) ? value.map(item => mapTree(item, encodeNode)) : mapTree(value, encodeNode);
	return out;
}

export function decodeNestedArrays(doc: Doc): Doc {
	return mapTree(doc, decodeNode) as Doc;
}
