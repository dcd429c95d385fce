/**
 * Outside HTTP agents: the attempt is POSTed to `endpoints.task` with a callback token scoped to
 * the task and absolute callback URLs; a 2xx means the agent took it and will report through the
 * callbacks. Failed deliveries count against a breaker per agent, which the dispatcher respects.
 * The POST goes through the egress policy; what a viewer reads of a failure names neither the URL
 * nor the status, which go to the server log.
 */
import { mintToken } from "../../platform/tokens";
import type { TaskDelivery } from "../../types";
import { egressPolicy, failureDetail, PROBLEM_TEXT, problemOf, problemOfStatus, redactUrl, type EgressPolicy } from "../egress";
import { DeliveryBreaker } from "./breaker";
import type { DeliveryOutcome, DeliveryTransport, TransportContext } from "./transport";

const DELIVERY_TIMEOUT_MS = 10_000;

/** One POST of a delivery: undefined when the agent took it, else what a viewer may read and what the log gets. */
async function post(egress: EgressPolicy, url: string, body: string): Promise<{ message: string; log: { status?: number; error?: string } } | undefined> {
	try {
		const res = await egress.fetch(url, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body,
			signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS)
		});
		return res.ok ? undefined : { message: PROBLEM_TEXT[problemOfStatus(res.status)], log: { status: res.status } };
	} catch (err) {
		return { message: PROBLEM_TEXT[problemOf(err)], log: { error: failureDetail(err) } };
	}
}

export function httpTransport({ broker, config, callbackBase }: TransportContext): DeliveryTransport {
	const logger = broker.getLogger("delivery");
	const breaker = new DeliveryBreaker({ threshold: 3, openMs: 30_000 });
	const egress = egressPolicy(config);
	return {
		name: "http",
		available: (agentId, now) => !breaker.isOpen(agentId, now),
		async deliver(task, agent): Promise<DeliveryOutcome> {
			const base = `${callbackBase()}/api/v1/tasks/${task.task_id}`;
			const delivery: TaskDelivery = {
				task_id: task.task_id,
				type: task.type,
				payload: task.payload,
				timeout: task.timeout,
				attempt: task.attempt,
				callback_token: mintToken(config.secrets.jwtSecret, {
					sub: `agent:${agent.id}`,
					roles: ["agent"],
					agent_id: agent.id,
					task_id: task.task_id,
					attempt: task.attempt,
					rat: agent.registered_at,
					expiresInSec: config.callbackTokenTtlSec || Math.ceil(task.timeout) + 300
				}, config.jwt),
				callbacks: { progress: `${base}/progress`, complete: `${base}/complete`, fail: `${base}/fail` }
			};
			const url = agent.endpoints.task;
			const failure = url ? await post(egress, url, JSON.stringify(delivery)) : { message: "the agent registered none", log: {} };
			if (!failure) {
				breaker.succeeded(agent.id);
				return { kind: "accepted" };
			}
			logger.warn({ agent: agent.id, task: task.task_id, url: url && redactUrl(url), ...failure.log }, "delivery to an HTTP agent failed");
			if (breaker.failed(agent.id)) logger.warn({ agent: agent.id }, "delivery breaker opened for agent");
			return { kind: "failed", failure: { code: "DELIVERY_FAILED", message: `Delivery to the agent's task endpoint failed: ${failure.message}`, retryable: true } };
		}
	};
}
