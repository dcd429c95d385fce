/**
 * `this.quotas`: the node's submission quotas (src/runtime/quotas.ts), shared by every service of
 * the node that admits submissions (tasks, pipelines), and closed when the last of them stops.
 */
import type { Service, ServiceSchema } from "moleculer";
import { acquireQuotas, releaseQuotas, type SubmissionQuotas } from "../src/runtime/quotas";

export interface QuotasThis {
	quotas: SubmissionQuotas;
}

type This = Service & QuotasThis;

export const quotasMixin = {
	created(this: This) {
		this.quotas = acquireQuotas(this.broker);
	},
	async stopped(this: This) {
		await releaseQuotas(this.broker);
	}
} as unknown as Partial<ServiceSchema>;
