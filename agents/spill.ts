/**
 * Rows too many to travel inside a task result (more than parameters.max_inline_records, default 1000) are parked
 * in a spill file, a JSON array with one row a line, and the result names it (`records_file` / `groups_file`).
 */
import { createHash } from "node:crypto";
import type { DataRecord, StageContext } from "../src/stage-contract";
import { digestOf, jsonArrayText, type RecordStream } from "./data-files";
import type { DataLocation } from "./locations";
import { outputLocation, readOptions, stem, type StageRun } from "./stage-input";

export const DEFAULT_MAX_INLINE_RECORDS = 1000;

function maxInline(run: StageRun): number {
	const limit = run.params.max_inline_records;
	return typeof limit === "number" && Number.isInteger(limit) && limit >= 0 ? limit : DEFAULT_MAX_INLINE_RECORDS;
}

/**
 * Where rows too many to travel inline are parked: beside the eventual output, so a run's files stay together (on
 * S3 when the output is, so a stage on another host can read them), else in the data root. The name ends in a
 * digest of what the file holds, so a retried stage rewrites the same file and runs over other data never clobber it.
 */
function spillLocation(run: StageRun, context: StageContext, key: "records" | "groups", digest: string): DataLocation {
	const out = outputLocation(run, context.source);
	const base = out ? stem(out.basename).replace(/\.output$/, "") : "mcp-stage";
	const slug = run.stageName.replace(/[^A-Za-z0-9_-]+/g, "-");
	const name = `${base}.${slug}.${key}.${digest}.json`;
	return out ? out.sibling(name) : run.locations.inRoot(name);
}

/** Inline when small; otherwise a spill file (see spillLocation), written in chunks. */
export async function packRows(
	run: StageRun,
	context: StageContext,
	rows: DataRecord[],
	key: "records" | "groups"
): Promise<Record<string, DataRecord[] | string>> {
	if (rows.length <= maxInline(run)) return { [key]: rows };
	const target = spillLocation(run, context, key, await digestOf(jsonArrayText(rows)));
	await target.write("spill file", jsonArrayText(rows));
	return { [`${key}_file`]: target.href };
}

/**
 * Rows straight from a source, never all in memory: inline when they turn out few, else streamed into a spill file
 * as they are read. Its content is not known before it is written, so the digest in its name is the source's
 * (location, version, read options): the same source read the same way makes the same file.
 */
export async function packRecordStream(
	run: StageRun,
	source: DataLocation,
	stream: RecordStream
): Promise<{ packed: Record<string, DataRecord[] | string>; count: number }> {
	const iterator = stream.records[Symbol.asyncIterator]();
	const head: DataRecord[] = [];
	const limit = maxInline(run);
	while (head.length <= limit) {
		const next = await iterator.next();
		if (next.done) return { packed: { records: head }, count: head.length };
		head.push(next.value);
	}
	let count = 0;
	async function* all(): AsyncGenerator<DataRecord> {
		for (const record of head.splice(0)) {
			count++;
			yield record;
		}
		for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
			if (++count % 100_000 === 0) run.progress(0.5, `read ${count} records`);
			yield next.value;
		}
	}
	const identity = JSON.stringify([source.href, stream.version, readOptions(run).format ?? null, readOptions(run).delimiter ?? null]);
	const digest = createHash("sha256").update(identity).digest("hex").slice(0, 12);
	const target = spillLocation(run, { source: source.href }, "records", digest);
	const written = await target.write("spill file", jsonArrayText(all()));
	run.progress(0.9, `${count} records spilled to ${target.href} (${written.bytes} bytes${written.parts > 1 ? ` in ${written.parts} parts` : ""})`);
	return { packed: { records_file: target.href }, count };
}
