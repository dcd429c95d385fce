import type { DataRecord, ProcessingResult } from "../../src/stage-contract";
import { packRows } from "../spill";
import { columnList, gatherContext, requireKnownColumns, requireRecords, typedRecords, type StageRun } from "../stage-input";
import { isCategorical, isIdentifierColumn, isMissing, isNumber, profileColumns, roundNumber } from "../statistics";

export async function processRecords(run: StageRun): Promise<ProcessingResult> {
	const input = await requireRecords(run, ["validation", "analysis", "transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	const profiles = profileColumns(records, input.columns);

	let groupBy = columnList(run.params.group_by, "parameters.group_by");
	if (groupBy) requireKnownColumns(groupBy, input.columns, "parameters.group_by");
	else {
		// Prefer a real category (region) over the first text column, which may be near-unique (a name or date).
		const category = profiles.find((p) => p.kind === "string" && isCategorical(p, records.length, Number.POSITIVE_INFINITY));
		const text = profiles.find((p) => p.kind === "string");
		const chosen = category ?? text;
		groupBy = chosen ? [chosen.name] : [];
	}
	const grouping = groupBy;
	let sum = columnList(run.params.sum, "parameters.sum");
	if (sum) requireKnownColumns(sum, input.columns, "parameters.sum");
	else sum = profiles.filter((p) => p.kind === "number" && !isIdentifierColumn(p.name) && !grouping.includes(p.name)).map((p) => p.name);
	const summed = sum.filter((column) => !grouping.includes(column));
	// The row counter is called `count`; a data column of that name keeps its sum under another name.
	const sumName = (column: string): string => (column === "count" ? "count_sum" : column);
	run.progress(0.2, `aggregating ${records.length} records by ${grouping.length > 0 ? grouping.join(", ") : "(all)"}`);

	const buckets = new Map<string, { keys: unknown[]; count: number; sums: number[] }>();
	for (const record of records) {
		const keys = grouping.map((column) => (isMissing(record[column]) ? null : record[column]));
		const id = JSON.stringify(keys);
		let bucket = buckets.get(id);
		if (!bucket) {
			bucket = { keys, count: 0, sums: summed.map(() => 0) };
			buckets.set(id, bucket);
		}
		bucket.count++;
		summed.forEach((column, index) => {
			const value = record[column];
			if (isNumber(value) && bucket) bucket.sums[index] += value;
		});
	}
	const groups = [...buckets.values()]
		.sort((a, b) => compareKeys(a.keys, b.keys))
		.map((bucket) => {
			const row: DataRecord = {};
			grouping.forEach((column, index) => {
				row[column] = bucket.keys[index];
			});
			row.count = bucket.count;
			summed.forEach((column, index) => {
				row[sumName(column)] = roundNumber(bucket.sums[index]);
			});
			return row;
		});
	run.progress(0.8, `${groups.length} groups`);
	const packed = await packRows(run, context, groups, "groups");
	return {
		group_by: grouping,
		sum: summed,
		count: groups.length,
		record_count: records.length,
		columns: [...grouping, "count", ...summed.map(sumName)],
		...packed,
		context
	};
}

function compareKeys(a: unknown[], b: unknown[]): number {
	for (let i = 0; i < a.length; i++) {
		const x = a[i];
		const y = b[i];
		if (x === y) continue;
		// Missing keys sort last so the named groups lead the report.
		if (x === null) return 1;
		if (y === null) return -1;
		if (isNumber(x) && isNumber(y)) return x - y;
		const order = String(x).localeCompare(String(y));
		if (order !== 0) return order;
	}
	return 0;
}
