/**
 * Reference worker for the six pipeline stage types, working on CSV and JSON data in local files (inside the data
 * root, so the default pipeline runs end to end on one machine) or on S3 (s3://bucket/key, agents/locations). No Moleculer here: the agent node wraps `executeStage`. What a stage is
 * given and what it returns, and how rows travel between stages, is the stage contract (src/stage-contract.ts);
 * the stages themselves are in agents/stages/.
 */
import type { StagePayload, StageType } from "../src/stage-contract";
import { isPlainObject } from "./data-files";
import { DataRoot } from "./data-root";
import { Locations, type S3Settings } from "./locations";
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
	/** The operator's S3 store for s3:// locations (`loadConfig(env).s3`); unset: AWS itself, as the SDK finds it. */
	s3?: S3Settings;
	report?: ProgressReporter;
}

export async function executeStage(type: string, payload: StagePayload, options: StageOptions): Promise<unknown> {
	const stage = resolveStage(type);
	const root = await DataRoot.open(options.dataRoot);
	// resolveStage has vouched for the type.
	const locations = new Locations(root, options.s3);
	return stage(prepareRun(type as StageType, isPlainObject(payload) ? payload : {}, locations, options.report));
}
