/**
 * Reference worker for the six pipeline stage types, working on local file:// CSV and JSON data so the default
 * pipeline runs end to end on one machine. No Moleculer here: the agent node wraps `executeStage`. What a stage is
 * given and what it returns, and how rows travel between stages, is the stage contract (src/stage-contract.ts);
 * the stages themselves are in agents/stages/.
 */
import type { StagePayload, StageType } from "../src/stage-contract";
import { isPlainObject } from "./data-files";
import { DataRoot } from "./data-root";
import { prepareRun, type ProgressReporter } from "./stage-input";
import { resolveStage } from "./stages";

export { PATH_OUTSIDE_DATA_ROOT } from "./data-root";
export { StageInputError } from "./stage-error";
export type { ProgressReporter } from "./stage-input";
export { cleanValue, toSnakeCase } from "./values";

export interface StageOptions {
	/**
	 * The only folder whose files the stage may read or write (absolute; `loadConfig(env).agent.dataRoot`).
	 * Required: a worker with no root would have the whole host as its data.
	 */
	dataRoot: string;
	report?: ProgressReporter;
}

export async function executeStage(type: string, payload: StagePayload, options: StageOptions): Promise<unknown> {
	const stage = resolveStage(type);
	const root = await DataRoot.open(options.dataRoot);
	// resolveStage has vouched for the type.
	return stage(prepareRun(type as StageType, isPlainObject(payload) ? payload : {}, root, options.report));
}
