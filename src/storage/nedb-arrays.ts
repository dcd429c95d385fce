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
 * A document with no array below its top-level fields (or, read back, no "%A" key) is passed as it is.
 */
import { mapContainers, someContainer, someKey, type Container } from "./json-walk";

const ARRAY_MARK = "%A";

type Doc = Record<string, unknown>;

function encodeNode(node: Container, mappedChild: (child: unknown) => unknown): unknown {
	const out: Doc = Array.isArray(node) ? { [ARRAY_MARK]: node.length } : {};
	for (const [key, child] of Object.entries(node)) out[key] = mappedChild(child);
	return out;
}

/** The same node when nothing below it changed; a copy is made only at the first child that did. */
function decodeNode(node: Container, mappedChild: (child: unknown) => unknown): unknown {
	if (!Array.isArray(node) && Object.hasOwn(node, ARRAY_MARK)) return Array.from({ length: Number(node[ARRAY_MARK]) }, (_, i) => mappedChild(node[i]));
	let copy: Container | undefined;
	for (const [key, child] of Object.entries(node)) {
		const next = mappedChild(child);
		if (next !== child) (copy ??= Array.isArray(node) ? [...node] : { ...node })[key as never] = next as never;
	}
	return copy ?? node;
}

/** A document (or a `$set` of top-level fields) as NeDB stores it. */
export function encodeNestedArrays(doc: Doc): Doc {
	// Depth 0 is the document, 1 its fields' values: every array deeper than a field's own value is encoded.
	if (!someContainer(doc, (node, depth) => Array.isArray(node) && depth > 1)) return doc;
	const out: Doc = {};
	for (const [field, value] of Object.entries(doc))
		out[field] = Array.isArray(value) ? value.map(item => mapContainers(item, encodeNode)) : mapContainers(value, encodeNode);
	return out;
}

export function decodeNestedArrays(doc: Doc): Doc {
	if (!someKey(doc, key => key === ARRAY_MARK)) return doc;
	return mapContainers(doc, decodeNode) as Doc;
}
