/**
 * Moleculer agents (the agent mixin): a direct call to the agent service's `execute` on its node.
 * The return value is the result, a thrown error the attempt's failure. Moleculer's own breaker,
 * timeouts and node discovery guard the call; errors are told apart by their classes and codes.
 */
import { Errors } from "moleculer";
import { deliveryKey, signDelivery } from "../../platform/trust";
import type { DeliveryOutcome, DeliveryTransport, TransportContext } from "./transport";

/** Our node has no endpoint for the agent (its node left or has not announced itself): the task never left. */
function neverDelivered(err: unknown): boolean {
	return err instanceof Errors.ServiceNotFoundError || err instanceof Errors.ServiceNotAvailableError;
}

export function moleculerTransport({ broker, config }: TransportContext): DeliveryTransport {
	return {
		name: "moleculer",
		available: () => true,
		async deliver(task, agent): Promise<DeliveryOutcome> {
			const attempt = task.attempt;
			try {
				const result = await broker.call(
					`${agent.service}.execute`,
					{
						task_id: task.task_id,
						type: task.type,
						payload: task.payload,
						timeout: task.timeout,
						attempt,
						// The agent runs only what a trusted node signed for it (its node holds no secret to check tokens with).
						signature: signDelivery(deliveryKey(config.secrets.jwtSecret, agent), task.task_id, attempt)
					},
					{ nodeID: agent.node_id ?? undefined, timeout: task.timeout * 1000 + 1000, retries: 0, meta: { taskId: task.task_id } }
				);
				return { kind: "result", result };
			} catch (err) {
				// The agent's node is gone, not yet announced, or refused the call while stopping: not the task's fault.
				if (neverDelivered(err) || err instanceof Errors.RequestRejectedError)
					return { kind: "unreachable", reason: (err as Error).message, delivered: !neverDelivered(err) };
				const e = err as Errors.MoleculerError & { data?: { code?: unknown } };
				const code = typeof e.data?.code === "string" ? e.data.code : undefined;
				return {
					kind: "failed",
					failure: {
						code: err instanceof Errors.RequestTimeoutError ? "TIMEOUT" : "EXECUTION_ERROR",
						message: e.message,
						retryable: e.type !== "NON_RETRYABLE",
						...(code ? { reason: code } : {})
					}
				};
			}
		}
	};
}
