/**
 * Turns any Moleculer service into an MCP agent: it registers itself with its node id, heartbeats,
 * and takes the tasks the dispatcher delivers to it by a direct call to its `execute` action.
 * The service supplies `handleTask(task, report)`; its return value is the task's result, a thrown
 * error its failure (an error with `retryable: false` fails the task without retries, and its
 * `code`, if any, names the failure in the task's error event).
 *
 * An agent node holds API_KEY, never JWT_SECRET: it registers with the key, then acts with the
 * agent token the registry gives it (renewed by every heartbeat), and runs only deliveries signed
 * with the key the registry handed it along (`delivery_key`), so no other process on the
 * transporter can make it work.
 */
import { Errors, type Context, type Service, type ServiceBroker, type ServiceSchema } from "moleculer";
import { nodeConfig } from "../src/platform/app-config";
import type { TypedServiceSchema } from "../src/platform/service-schema";
import { verifyDelivery } from "../src/platform/trust";
import type { AgentType, HeartbeatAnswer, RegisteredAgent } from "../src/types";

export interface AgentTask {
	task_id: string;
	type: string;
	payload: Record<string, unknown>;
	timeout: number;
	attempt: number;
}

export type ProgressReport = (progress: number, message?: string) => Promise<void>;

export interface AgentOptions {
	name: string;
	type?: AgentType;
	capabilities: string[];
	/** Tasks this agent runs at once (registered as `resources.cpu`). */
	concurrency?: number;
	/** False: the service does not act as an agent on this node (it registers nothing and runs nothing). */
	enabled?: boolean;
}

/** The options, or how to read them from the node's broker (its config is known only then). */
export type AgentOptionsSource = AgentOptions | ((broker: ServiceBroker) => AgentOptions);

export interface AgentThis extends Service<Record<string, any>> {
	agentOptions: AgentOptions;
	agentId?: string;
	/** Its own token, and the key its deliveries are signed with: both from the registry. */
	agentToken?: string;
	deliveryKey?: string;
	heartbeatTimer?: NodeJS.Timeout;
	handleTask(task: AgentTask, report: ProgressReport): Promise<unknown>;
	registerAgent(): Promise<void>;
	heartbeat(): Promise<void>;
}

const concurrencyOf = (opts: AgentOptions) => Math.max(1, Math.floor(opts.concurrency ?? 1));

export function agentMixin(source: AgentOptionsSource): Partial<ServiceSchema> {
	const schema: Partial<TypedServiceSchema<AgentThis>> & { merged(this: AgentThis, schema: ServiceSchema): void } = {
		/** The options are this node's: its bulkhead follows the concurrency, and a disabled agent offers no `execute`. */
		merged(this: AgentThis, merged: ServiceSchema) {
			const opts = typeof source === "function" ? source(this.broker) : source;
			const actions = (merged.actions ?? {}) as Record<string, Record<string, unknown>>;
			if (opts.enabled === false) delete actions.execute;
			else {
				const concurrency = concurrencyOf(opts);
				actions.execute = { ...actions.execute, bulkhead: { enabled: true, concurrency, maxQueueSize: concurrency * 100 } };
			}
			merged.actions = actions as ServiceSchema["actions"];
			this.agentOptions = opts;
		},
		actions: {
			execute: {
				// Reached by the dispatcher over the transporter, never through the REST gateway.
				visibility: "public",
				access: "delivery",
				params: { task_id: "string", type: "string", payload: "object", timeout: "number", attempt: "number", signature: "string" },
				async handler(this: AgentThis, ctx: Context<AgentTask & { signature: string }>) {
					const { signature, ...task } = ctx.params;
					if (!this.deliveryKey || !verifyDelivery(this.deliveryKey, task.task_id, task.attempt, signature))
						throw new Errors.MoleculerClientError("Delivery not signed by the registry (this agent may have registered anew): try again", 403, "TASK_FAILED");
					const report: ProgressReport = async (progress, message) => {
						await ctx.call("tasks.progress", { id: task.task_id, progress, message }, { meta: { token: this.agentToken } }).catch(() => undefined);
					};
					try {
						return await this.handleTask(task, report);
					} catch (err) {
						const e = err as Error & { retryable?: boolean; code?: unknown };
						const code = typeof e.code === "string" ? e.code : undefined;
						// 4xx: a task's own failure must not open Moleculer's breaker on this node.
						throw new Errors.MoleculerClientError(e.message, 422, e.retryable === false ? "NON_RETRYABLE" : "TASK_FAILED", code ? { code } : undefined);
					}
				}
			}
		},
		methods: {
			async registerAgent(this: AgentThis) {
				const opts = this.agentOptions;
				if (opts.enabled === false) return;
				await this.broker.waitForServices(["agents"]);
				const agent = await this.broker.call<RegisteredAgent, object>(
					"agents.register",
					{ name: opts.name, type: opts.type ?? "worker", capabilities: opts.capabilities, resources: { cpu: concurrencyOf(opts) }, node_id: this.broker.nodeID, service: this.fullName },
					// Its own token (when it has one) keeps its registration; the API key alone starts a new one.
					{ meta: { apiKey: nodeConfig(this.broker).secrets.apiKey, token: this.agentToken } }
				);
				this.agentId = agent.id;
				this.agentToken = agent.token;
				this.deliveryKey = agent.delivery_key;
				this.logger.info({ agent_id: agent.id, capabilities: opts.capabilities }, "registered as an agent");
			},
			async heartbeat(this: AgentThis) {
				if (this.agentOptions.enabled === false) return;
				if (!this.agentId) return this.registerAgent();
				try {
					const answer = await this.broker.call<HeartbeatAnswer, { id: string }>("agents.heartbeat", { id: this.agentId }, { meta: { token: this.agentToken } });
					this.agentToken = answer.token;
				} catch (err) {
					// Deregistered, or its token is of a registration the registry no longer has: come back.
					const code = (err as Errors.MoleculerError).code;
					if (code === 404 || code === 401) {
						this.agentToken = undefined;
						await this.registerAgent();
					} else throw err;
				}
			}
		},
		started(this: AgentThis) {
			if (this.agentOptions.enabled === false) return;
			const interval = Math.max(200, Math.floor(nodeConfig(this.broker).heartbeatTimeoutMs / 3));
			this.heartbeatTimer = setInterval(() => {
				void this.heartbeat().catch(err => this.logger.debug({ err: (err as Error).message }, "heartbeat failed"));
			}, interval);
			this.heartbeatTimer.unref();
		},
		events: {
			// Register only once this node has announced its services, so the dispatcher can call us at once;
			// and without blocking start-up: the registry may live on a node that joins later.
			"$broker.started"(this: AgentThis) {
				void this.registerAgent().catch(err => this.logger.warn({ err: (err as Error).message }, "agent registration failed; retrying on heartbeat"));
			}
		},
		stopped(this: AgentThis) {
			clearInterval(this.heartbeatTimer);
		}
	};
	return schema as Partial<ServiceSchema>;
}
