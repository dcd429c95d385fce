/**
 * How a claimed attempt reaches its agent. A transport answers with what happened as data: the
 * agent took the task and will report (HTTP), the agent's answer itself (a Moleculer call returns
 * the result), a failure of the attempt, or "never reached it", which puts the task back in the
 * queue without spending a retry. The tasks service turns each outcome into a task event.
 */
import type { ServiceBroker } from "moleculer";
import type { TaskFailure } from "../../domain/tasks/decide";
import type { AppConfig } from "../../platform/config";
import type { Agent, Task } from "../../types";

export type DeliveryOutcome =
	| { kind: "accepted" }
	| { kind: "result"; result: unknown }
	| { kind: "failed"; failure: TaskFailure }
	/** `delivered: false`: the task never got to the agent, so the attempt does not count. */
	| { kind: "unreachable"; reason: string; delivered: boolean };

export interface DeliveryTransport {
	/** Its name in the registry (`src/runtime/delivery/index.ts`). */
	readonly name: string;
	deliver(task: Task, agent: Agent): Promise<DeliveryOutcome>;
	/** False while deliveries to this agent keep failing (a breaker is open): give it nothing now. */
	available(agentId: string, now: number): boolean;
}

/** What every transport may use; each takes what it needs. */
export interface TransportContext {
	broker: ServiceBroker;
	config: AppConfig;
	/** Absolute base URL agents call back to (`PUBLIC_URL`, else this node's gateway). */
	callbackBase(): string;
}

export type TransportFactory = (context: TransportContext) => DeliveryTransport;
