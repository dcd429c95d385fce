/** Pipeline fixtures for the pure run rules: definitions go through `validatePipeline`, as the service stores them. */
import { validatePipeline } from "../../src/domain/pipelines/dag";
import type { StageTaskOutcome } from "../../src/domain/pipelines/runs";
import type { Pipeline, PipelineDefinition, TaskStatus } from "../../src/types";

export const PIPELINE_CREATED_AT = "2024-01-01T00:00:00.000Z";

/** A stored pipeline: the definition as validated (explicit dependencies, `required` filled in). */
export function pipeline(def: PipelineDefinition, pipelineId = "pipeline-1"): Pipeline {
	const checked = validatePipeline(def);
	if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
	return { pipeline_id: pipelineId, created_by: null, ...checked.value, created_at: PIPELINE_CREATED_AT, updated_at: PIPELINE_CREATED_AT };
}

/** source → left, source → right (optional) → join; the join carries a timeout, no retries and a capability. */
export const diamond = pipeline({
	name: "diamond",
	stages: [
		{ name: "source", type: "data-ingestion" },
		{ name: "left", type: "transformation", parameters: { side: "left" } },
		{ name: "right", type: "analysis", required: false },
		{ name: "join", type: "output", timeout: 30, retry_count: 0, required_capabilities: ["disk"] }
	],
	dependencies: [{ from: 0, to: 1 }, { from: 0, to: 2 }, { from: 1, to: 3 }, { from: 2, to: 3 }]
});

/** What a stage needs of its task. */
export const task = (id: string, status: TaskStatus, result: unknown = null, error: string | null = null): StageTaskOutcome => ({
	task_id: id, status, result, error
});
