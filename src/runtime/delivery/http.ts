/**
 * Outside HTTP agents: the attempt is POSTed to `endpoints.task` with a callback token scoped to
 * the task and absolute callback URLs; a 2xx means the agent took it and will report through the
 * callbacks. Failed deliveries count against a breaker per agent, which the dispatcher respects.
 */
import { mintToken } from "../../platform/tokens";
import type { TaskDelivery } from "../../types";
import { DeliveryBreaker } from "./breaker";
import type { DeliveryOutcome, DeliveryTransport, TransportContext } from "./transport";

const DELIVERY_TIMEOUT_MS = 10_000;

export function httpTransport({ broker, config, callbackBase }: TransportContext): DeliveryTransport {
	const logger = broker.getLogger("delivery");
	const breaker = new DeliveryBreaker({ threshold: 3, openMs: 30_000 });
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
					expiresInSec: config.callbackTokenTtlSec || Math.ceil(task.timeout) + 300
				}, config.jwt),
				callbacks: { progress: `${base}/progress`, complete: `${base}/complete`, fail: `${base}/fail` }
			};
			try {
				if (!agent.endpoints.task) throw new Error("agent has no task endpoint");
				const res = await fetch(agent.endpoints.task, {
					method: "POST",
					headers: { "Content-Type": "application/json" },
					body: JSON.stringify(delivery),
					signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS)
				});
				await res.body?.cancel();
				if (!res.ok) throw new Error(`agent answered ${res.status}`);
				breaker.succeeded(agent.id);
				return { kind: "accepted" };
			} catch (err) {
				if (breaker.failed(agent.id)) logger.warn({ agent: agent.id }, "delivery breaker opened for agent");
				return {
					kind: "failed",
					failure: { code: "DELIVERY_FAILED", message: `Delivery to ${agent.endpoints.task} failed: ${(err as Error).message}`, retryable: true }
				};
			}
		}
	};
}
