/**
 * The stage registry: stage type → implementation, in the manner of Moleculer's own registries (strategies,
 * serializers). Keyed by the contract's stage list, so a type added there without a stage here fails to compile:
 * a new stage is one module, one line below and its name in STAGE_TYPES.
 */
import { STAGE_TYPES, type StageType } from "../../src/stage-contract";
import { StageInputError } from "../stage-error";
import type { StageRun } from "../stage-input";
import { analyse } from "./analysis";
import { ingest } from "./data-ingestion";
import { writeOutput } from "./output";
import { processRecords } from "./processing";
import { transform } from "./transformation";
import { validate } from "./validation";

export type Stage = (run: StageRun) => Promise<unknown>;

export const STAGES: Readonly<Record<StageType, Stage>> = {
	"data-ingestion": ingest,
	transformation: transform,
	analysis: analyse,
	validation: validate,
	processing: processRecords,
	output: writeOutput
};

// Own keys only: a task type such as "toString" must not find Object.prototype's.
export function isStageType(type: string): type is StageType {
	return Object.hasOwn(STAGES, type);
}

export function resolveStage(type: string): Stage {
	if (!isStageType(type)) {
		throw new StageInputError(`unsupported stage type ${JSON.stringify(type)} (expected one of ${STAGE_TYPES.join(", ")})`);
	}
	return STAGES[type];
}
