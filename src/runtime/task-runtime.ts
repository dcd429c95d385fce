/**
 * The runtime pieces one tasks node drives its tasks with, wired together: the entity actor over
 * the open tasks it owns (its trusted copies in `live`), ownership across core nodes, the
 * dispatcher, one instance of each delivery transport, and the attempt and retry timers.
 * The tasks service decides and executes; this holds the machinery it does that with.
 */
import type { Logger, ServiceBroker } from "moleculer";
import type { TaskRecord } from "../domain/tasks/decide";
import { isTerminal } from "../domain/tasks/state-machine";
import { localGatewayUrl } from "../gateway/local-gateway";
import type { AppConfig } from "../platform/config";
import type { EntityStore } from "../storage/entity-store";
import type { Agent, Principal, Task } from "../types";
import { Deliveries } from "./delivery";
import { Dispatcher } from "./dispatcher";
import { EntityActor } from "./entity-actor";
import { KeyedTimers } from "./keyed-timers";
import { Ownership } from "./ownership";

/** The stored record: the wire task plus its compare-and-set version and the node that owns it. */
export type StoredTask = TaskRecord & { version: number; owner_node: string };

/** The public shape: internals dropped. */
export function taskToWire(task: StoredTask): Task {
	const { version: _version, owner_node: _owner, managers: _managers, attempt_offset: _offset, ...wire } = task;
	return { ...wire, created_by: wire.created_by ?? null };
}

export interface TaskRuntimeHost {
	broker: ServiceBroker;
	config: AppConfig;
	logger: Logger;
	store(): EntityStore<StoredTask>;
	/** The dispatcher planned `taskId` for `agent`: claim and deliver it. */
	claim(taskId: string, agent: Agent): Promise<void>;
	/** This node now owns an open task it did not drive before (adoption). */
	resume(task: StoredTask): Promise<void>;
}

export class TaskRuntime {
	/** Open tasks this node owns, by id. */
	readonly live = new Map<string, StoredTask>();
	readonly actor: EntityActor<StoredTask>;
	readonly ownership: Ownership<StoredTask>;
	readonly dispatcher: Dispatcher;
	readonly deliveries: Deliveries;
	readonly attemptTimers = new KeyedTimers();
	readonly retryTimers = new KeyedTimers();

	private readonly broker: ServiceBroker;

	constructor(host: TaskRuntimeHost) {
		const { broker, config, logger } = host;
		this.broker = broker;
		const live = this.live;
		this.actor = new EntityActor<StoredTask>({
			kind: "Task",
			idField: "task_id",
			store: host.store,
			maxTries: 6,
			stamp: now => ({ updated_at: now.toISOString() }),
			cache: {
				get: id => live.get(id),
				put: task => (isTerminal(task.status) ? live.delete(task.task_id) : live.set(task.task_id, task)),
				delete: id => live.delete(id)
			}
		});
		this.ownership = new Ownership<StoredTask>({
			broker,
			logger,
			service: "tasks",
			actor: this.actor,
			idOf: task => task.task_id,
			isOpen: task => !isTerminal(task.status),
			onAdopted: task => host.resume(task)
		});
		// Where HTTP agents call back: PUBLIC_URL, else this node's own gateway (https when it serves TLS).
		const callbackBase = () => config.publicUrl ?? localGatewayUrl(broker, config);
		this.deliveries = new Deliveries({ broker, config, callbackBase });
		this.dispatcher = new Dispatcher({
			nodeId: broker.nodeID,
			maxConcurrentTasks: config.maxConcurrentTasks,
			liveTasks: () => live.values(),
			available: (agent, now) => this.deliveries.for(agent).available(agent.id, now),
			claim: async (taskId, agentId) => {
				const agent = this.dispatcher.agents.get(agentId);
				if (agent) await host.claim(taskId, agent);
			},
			reportLoad: (agentId, running) =>
				void broker.call("agents.setLoad", { id: agentId, node_id: broker.nodeID, running_tasks: running }).catch(() => undefined),
			onError: err => logger.error({ err }, "dispatch failed")
		});
	}

	/** Is this agent token of the agent's registration now? This node's view first, the registry when it has not heard yet. */
	async isCurrentAgent(by: Principal): Promise<boolean> {
		const id = by.agent_id ?? "";
		if (this.dispatcher.agents.get(id)?.registered_at === by.rat) return true;
		const agent = await this.broker.call<Agent, { id: string }>("agents.get", { id }).catch(() => null);
		return agent?.registered_at === by.rat;
	}

	start(): void {
		this.dispatcher.start();
	}

	stop(): void {
		this.dispatcher.stop();
		this.attemptTimers.clearAll();
		this.retryTimers.clearAll();
	}
}
