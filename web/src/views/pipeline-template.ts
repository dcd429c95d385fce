/** The spec's six-stage pipeline ("Create Pipeline") and an execution over the reference agent's sample data. */
import type { PipelineDefinition, PipelineExecution } from "../../../src/types";

const STAGES: Array<[string, PipelineDefinition["stages"][number]["type"], number]> = [
	["data-ingestion", "data-ingestion", 300],
	["data-transformation", "transformation", 600],
	["data-analysis", "analysis", 900],
	["data-validation", "validation", 300],
	["data-processing", "processing", 1200],
	["output-generation", "output", 300]
];

export const SIX_STAGE_TEMPLATE: PipelineDefinition = {
	name: "data-processing-pipeline",
	description: "6-stage data processing pipeline",
	stages: STAGES.map(([name, type, timeout]) => ({ name, type, required: true, timeout })),
	dependencies: STAGES.slice(1).map((_, i) => ({ from: i, to: i + 1 }))
};

/** The reference agent resolves relative paths inside its data root, where sample.csv is copied. */
export const SAMPLE_EXECUTION: PipelineExecution = { input_data: { source: "sample.csv", format: "csv" } };

export const pretty = (value: unknown) => JSON.stringify(value, null, 2);
