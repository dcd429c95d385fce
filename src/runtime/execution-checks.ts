/**
 * What an execute request must pass before a run is made of it: a webhook needs the secret its
 * signature is made with and an address the egress policy allows, and the run's input and
 * parameters must still fit the nesting limit one level down, where each stage task carries them
 * (refused now rather than accepted as a run whose stages cannot start).
 */
import { STAGE_PAYLOAD_FIELD_LEVEL } from "../domain/pipelines/runs";
import type { AppConfig } from "../platform/config";
import { checkPayload, MAX_JSON_DEPTH } from "../platform/middlewares/payload-guard";
import type { FieldError, PipelineExecution } from "../types";
import { egressPolicy } from "./egress";

export async function executionProblems(execution: PipelineExecution, config: AppConfig): Promise<FieldError[]> {
	const webhook = execution.notification?.webhook;
	if (webhook && !config.secrets.webhookSecret)
		return [{ field: "notification.webhook", message: "WEBHOOK_SECRET is required for webhooks and is not set on this server.", type: "config" }];
	for (const field of ["input_data", "parameters"] as const) {
		const tooDeep = checkPayload(execution[field], MAX_JSON_DEPTH, { path: field, depth: STAGE_PAYLOAD_FIELD_LEVEL });
		if (tooDeep) return [{ ...tooDeep, message: `${tooDeep.message} once in a stage task's payload` }];
	}
	return egressPolicy(config).refusedFields({ "notification.webhook": webhook });
}
