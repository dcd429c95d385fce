import type { AnalysisResult, AnalysisSummary, NumericSummary } from "../../src/stage-contract";
import { packRows } from "../spill";
import { gatherContext, requireRecords, typedRecords, type StageRun } from "../stage-input";
import { isCategorical, isIdentifierColumn, numericValues, profileColumns, summarise, valueCounts } from "../statistics";

const DEFAULT_MAX_CATEGORIES = 20;

export async function analyse(run: StageRun): Promise<AnalysisResult> {
	const input = await requireRecords(run, ["transformation", "data-ingestion"]);
	const records = typedRecords(input);
	const context = gatherContext(run);
	run.progress(0.2, `analysing ${records.length} records`);

	const maxCategories = typeof run.params.max_categories === "number" ? run.params.max_categories : DEFAULT_MAX_CATEGORIES;
	const statistics: Record<string, NumericSummary> = {};
	const groups: Record<string, Record<string, number>> = {};
	for (const profile of profileColumns(records, input.columns)) {
		if (profile.kind === "number" && !isIdentifierColumn(profile.name)) {
			const values = numericValues(records, profile.name);
			const summary = summarise(values, records.length - values.length);
			if (summary) statistics[profile.name] = summary;
		} else if (isCategorical(profile, records.length, maxCategories)) {
			groups[profile.name] = valueCounts(records, profile.name);
		}
	}
	run.progress(0.8, `${Object.keys(statistics).length} numeric and ${Object.keys(groups).length} categorical columns`);

	const analysis: AnalysisSummary = { count: records.length, statistics, groups };
	const ownContext = { ...context, analysis };
	// Rows pass through for validation, which may not depend on transformation directly.
	const packed = await packRows(run, ownContext, records, "records");
	return { ...analysis, columns: input.columns, ...packed, context: ownContext };
}
