import type { DataRecord, TransformationResult } from "../../src/stage-contract";
import { uniqueNames } from "../csv";
import { isPlainObject } from "../data-files";
import { packRows } from "../spill";
import { columnList, gatherContext, requireKnownColumns, requireRecords, type StageRun } from "../stage-input";
import { isNumber, roundNumber } from "../statistics";
import { cleanValue, toSnakeCase } from "../values";

export async function transform(run: StageRun): Promise<TransformationResult> {
	const input = await requireRecords(run, ["data-ingestion"]);
	const context = gatherContext(run);
	run.progress(0.2, `transforming ${input.records.length} records`);

	const rename = isPlainObject(run.params.rename) ? run.params.rename : {};
	const targets = uniqueNames(
		input.columns.map((original) => {
			const snake = toSnakeCase(original);
			// Rename keys may be written against the file's header or the normalised name; both are natural.
			const renamed = rename[original] ?? rename[snake];
			return typeof renamed === "string" && renamed.trim() !== "" ? renamed.trim() : snake;
		})
	);
	let records = input.records.map((record) => {
		const out: DataRecord = {};
		input.columns.forEach((original, index) => {
			out[targets[index]] = cleanValue(record[original]);
		});
		return out;
	});
	let columns = [...targets];
	run.progress(0.5, "columns normalised and values typed");

	// Keep a `total` that came with the data: it may include discounts or tax the product would not.
	if (columns.includes("quantity") && columns.includes("unit_price") && !columns.includes("total")) {
		for (const record of records) {
			const { quantity, unit_price: price } = record;
			record.total = isNumber(quantity) && isNumber(price) ? roundNumber(quantity * price) : null;
		}
		columns.push("total");
	}

	const select = columnList(run.params.select, "parameters.select");
	if (select) {
		requireKnownColumns(select, columns, "parameters.select");
		records = records.map((record) => Object.fromEntries(select.map((column) => [column, record[column]])));
		columns = select;
	}
	const packed = await packRows(run, context, records, "records");
	run.progress(0.95, "transformation done");
	return { count: records.length, columns, ...packed, context };
}
