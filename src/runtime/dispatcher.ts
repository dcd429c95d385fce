/**
 * The dispatcher of one tasks node: its view of the agents, one planning pass at a time over the
 * queued tasks this node owns, and the batched reports of how many tasks it runs on each agent.
 * What goes where is the pure policy's call (`src/domain/tasks/dispatch.ts`); claiming and
 * delivering are the host's (the tasks service).
 */
import { acceptsWork } from "../domain/agents/status";
import { GENERIC_CAPABILITY, planDispatch, type DispatchAgent, type DispatchTask } from "../domain/tasks/dispatch";
import type { Agent, Task } from "../types";

export interface DispatcherHost {
	nodeId: string;
	maxConcurrentTasks: number;
	/** Tasks this node owns and drives (open ones). */
	liveTasks(): Iterable<Task>;
	/** Can this agent's transport take a delivery now (its breaker is not open)? */
	available(agent: Agent, now: number): boolean;
	/** Claims and delivers one planned assignment. */
	claim(taskId: string, agentId: string): Promise<void>;
	/** This node runs `running` tasks on the agent now (batched: at most one report per agent per flush). */
	reportLoad(agentId: string, running: number): void;
	onError(err: unknown): void;
}

const LOAD_FLUSH_MS = 250;

/** A queued task as the dispatch policy sees it. */
export function asDispatchTask(t: Task): DispatchTask {
	return {
		task_id: t.task_id,
		type: t.type,
		priority: t.priority,
		required_capabilities: t.required_capabilities,
		created_at: t.created_at,
		not_before: t.next_attempt_at ? Date.parse(t.next_attempt_at) : null
	};
}

export class Dispatcher {
	readonly agents = new Map<string, Agent>();
	private scheduled = false;
	/** The pass in progress: passes never overlap, so two cannot plan the same queued task. */
	private passing: Promise<void> = Promise.resolve();
	private readonly loadChanged = new Set<string>();
	private flushTimer?: NodeJS.Timeout;

	constructor(private readonly host: DispatcherHost) {}

	get maxConcurrentTasks(): number {
		return this.host.maxConcurrentTasks;
	}

	start(): void {
		this.flushTimer = setInterval(() => this.flushLoad(), LOAD_FLUSH_MS);
		this.flushTimer.unref();
	}

	stop(): void {
		clearInterval(this.flushTimer);
	}

	/** Coalesces requests: one pass at a time, and one more after it if anything asked meanwhile. */
	schedule(): void {
		if (this.scheduled) return;
		this.scheduled = true;
		setImmediate(() => {
			this.scheduled = false;
			this.passing = this.passing.then(() => this.pass()).catch(err => this.host.onError(err));
		});
	}

	/** An agent's running count changed: report it with the next flush. */
	markLoadChanged(agentId: string): void {
		this.loadChanged.add(agentId);
	}

	runningByAgent(): Map<string, number> {
		const counts = new Map<string, number>();
		for (const t of this.host.liveTasks())
			if (t.status === "running" && t.assigned_agent) counts.set(t.assigned_agent, (counts.get(t.assigned_agent) ?? 0) + 1);
		return counts;
	}

	/**
	 * The agents as the policy sees them (those `include` keeps): running counts are ours counted
	 * live plus other core nodes' as they last reported them.
	 */
	policyAgents(now: number, include: (agent: Agent) => boolean = () => true): Array<Agent & DispatchAgent> {
		const running = this.runningByAgent();
		const agents: Agent[] = [];
		for (const a of this.agents.values()) if (include(a)) agents.push(a);
		return agents.map(a => ({
			...a,
			running_tasks: (running.get(a.id) ?? 0) + a.running_tasks - (a.running_by_node?.[this.host.nodeId] ?? 0),
			skip: !this.host.available(a, now)
		}));
	}

	/** Running tasks this node drives: the cluster's count as far as the MAX_CONCURRENT_TASKS check goes. */
	runningTotal(): number {
		let running = 0;
		for (const t of this.host.liveTasks()) if (t.status === "running") running++;
		return running;
	}

	private async pass(): Promise<void> {
		const now = Date.now();
		const queued: DispatchTask[] = [];
		let runningTotal = 0;
		for (const t of this.host.liveTasks()) {
			if (t.status === "running") runningTotal++;
			else if (t.status === "pending" || t.status === "retrying") queued.push(asDispatchTask(t));
		}
		if (!queued.length) return;
		// Only agents that take work and one of the queued types: a registry of thousands costs a pass nothing for the rest.
		const types = new Set(queued.map(t => t.type));
		const agents = this.policyAgents(now, a => acceptsWork(a.status) && a.capabilities.some(c => types.has(c) || c === GENERIC_CAPABILITY));
		const plan = planDispatch({ tasks: queued, agents, runningTotal, maxConcurrentTasks: this.host.maxConcurrentTasks, now });
		// Claims first (so the next pass sees these as running); each delivers without waiting.
		await Promise.all(plan.map(a => this.host.claim(a.task_id, a.agent_id)));
	}

	private flushLoad(): void {
		if (!this.loadChanged.size) return;
		const running = this.runningByAgent();
		for (const agentId of this.loadChanged) if (this.agents.has(agentId)) this.host.reportLoad(agentId, running.get(agentId) ?? 0);
		this.loadChanged.clear();
	}
}
