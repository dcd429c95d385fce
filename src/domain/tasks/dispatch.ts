/**
 * Dispatch policy: which queued task goes to which agent. Pure: the caller passes a snapshot of
 * the queue and the agents and applies the assignments it gets back.
 */
import { acceptsWork } from "../agents/status";
import type { AgentStatus, Priority, TaskStatus } from "../../types";

/** The fields of a queued Task the policy needs. */
export interface DispatchTask {
	task_id: string;
	type: string;
	priority: Priority;
	required_capabilities: readonly string[];
	/** FIFO position within a priority: an ISO time (as `Task.created_at`) or epoch ms. */
	created_at: string | number;
	/** Enqueue sequence: orders tasks created in the same millisecond. */
	seq?: number;
	/** Epoch ms before which the task may not run: a retrying task still in its backoff. */
	not_before?: number | null;
}

/** The fields of an Agent the policy needs. */
export interface DispatchAgent {
	id: string;
	status: AgentStatus;
	capabilities: readonly string[];
	/** `cpu` is the number of tasks the agent runs at once. */
	resources?: { cpu?: number } | null;
	current_load: number;
	running_tasks: number;
	/** Its circuit breaker is open: recent deliveries to it failed, so give it nothing for now. */
	skip?: boolean;
}

export interface DispatchInput {
	tasks: readonly DispatchTask[];
	agents: readonly DispatchAgent[];
	/** Tasks running cluster-wide right now. */
	runningTotal: number;
	maxConcurrentTasks: number;
	/** Epoch ms, compared with `not_before`. */
	now: number;
}

export interface Assignment {
	task_id: string;
	agent_id: string;
}

/** An agent with this capability takes a task of any type (it still needs the required capabilities). */
export const GENERIC_CAPABILITY = "task-execution";

export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { high: 0, medium: 1, low: 2 };

const UNKNOWN_PRIORITY_RANK = PRIORITY_RANK.medium;

function priorityRank(priority: Priority): number {
	return Object.hasOwn(PRIORITY_RANK, priority) ? PRIORITY_RANK[priority] : UNKNOWN_PRIORITY_RANK;
}

function enqueueTime(task: DispatchTask): number {
	const time = typeof task.created_at === "number" ? task.created_at : Date.parse(task.created_at);
	// An unreadable time must not poison the sort (NaN compares false both ways): queue it last.
	return Number.isFinite(time) ? time : Number.MAX_SAFE_INTEGER;
}

function compareIds(a: string, b: string): number {
	return a < b ? -1 : a > b ? 1 : 0;
}

/** Queue order: higher priority first, then FIFO, then task id so the order is total. */
export function compareQueueOrder(a: DispatchTask, b: DispatchTask): number {
	return (
		priorityRank(a.priority) - priorityRank(b.priority) ||
		enqueueTime(a) - enqueueTime(b) ||
		(a.seq ?? 0) - (b.seq ?? 0) ||
		compareIds(a.task_id, b.task_id)
	);
}

/** Preferred agent first: least load, then fewest running tasks, then id so ties are stable. */
export function compareAgentPreference(
	a: Pick<DispatchAgent, "id" | "current_load" | "running_tasks">,
	b: Pick<DispatchAgent, "id" | "current_load" | "running_tasks">
): number {
	return a.current_load - b.current_load || a.running_tasks - b.running_tasks || compareIds(a.id, b.id);
}

/** Tasks an agent runs at once: `resources.cpu`, floored, at least 1. */
export function agentConcurrency(agent: Pick<DispatchAgent, "resources">): number {
	const cpu = agent.resources?.cpu;
	return typeof cpu === "number" && Number.isFinite(cpu) && cpu >= 1 ? Math.floor(cpu) : 1;
}

function hasCapabilitiesFor(
	capabilities: { has(capability: string): boolean },
	task: Pick<DispatchTask, "type" | "required_capabilities">
): boolean {
	return (
		(capabilities.has(task.type) || capabilities.has(GENERIC_CAPABILITY)) &&
		task.required_capabilities.every(capability => capabilities.has(capability))
	);
}

function isOpenForWork(agent: DispatchAgent): boolean {
	return acceptsWork(agent.status) && !agent.skip && agent.running_tasks < agentConcurrency(agent);
}

export function canTake(agent: DispatchAgent, task: Pick<DispatchTask, "type" | "required_capabilities">): boolean {
	return isOpenForWork(agent) && hasCapabilitiesFor(new Set(agent.capabilities), task);
}

/** Why the policy passes an agent over for a task (the same tests `canTake` and `planDispatch` make). */
export type PassOverReason = "missing_capability" | "at_concurrency" | "draining" | "offline" | "not_active" | "breaker_open" | "cluster_limit" | "backoff";

export interface AgentVerdict {
	agent_id: string;
	eligible: boolean;
	reasons: PassOverReason[];
	/** What the task needs that the agent lacks (its type counts unless the agent takes `task-execution`). */
	missing_capabilities: string[];
}

export interface WaitExplanation {
	/** Reasons that hold for every agent: the cluster is full, or the task is in its backoff. */
	reasons: PassOverReason[];
	agents: AgentVerdict[];
}

/** `GET /tasks/{id}/explain`: the task, the cluster's limit, and each agent's verdict under its name and status. */
export interface WaitReport {
	task_id: string;
	status: TaskStatus;
	waiting: boolean;
	not_before: string | null;
	cluster: { running: number; max: number; full: boolean };
	agents: Array<AgentVerdict & { name: string; status: AgentStatus }>;
}

/**
 * Why a queued task waits: for each agent, every rule of the policy it fails. An agent with no
 * reason could take the task now (it waits only for the next pass, or for a task ahead of it).
 */
export function explainWait(task: DispatchTask, input: Omit<DispatchInput, "tasks">): WaitExplanation {
	const reasons: PassOverReason[] = [];
	if (input.runningTotal >= input.maxConcurrentTasks) reasons.push("cluster_limit");
	if (task.not_before != null && task.not_before > input.now) reasons.push("backoff");
	const agents = input.agents.map((agent): AgentVerdict => {
		const capabilities = new Set(agent.capabilities);
		const missing = [
			...(capabilities.has(task.type) || capabilities.has(GENERIC_CAPABILITY) ? [] : [task.type]),
			...task.required_capabilities.filter(capability => !capabilities.has(capability))
		];
		const own: PassOverReason[] = [];
		if (missing.length) own.push("missing_capability");
		if (agent.status === "offline") own.push("offline");
		else if (agent.status === "draining") own.push("draining");
		else if (!acceptsWork(agent.status)) own.push("not_active");
		if (agent.skip) own.push("breaker_open");
		if (agent.running_tasks >= agentConcurrency(agent)) own.push("at_concurrency");
		const all = [...own, ...reasons];
		return { agent_id: agent.id, eligible: all.length === 0, reasons: all, missing_capabilities: missing };
	});
	return { reasons, agents };
}

/**
 * Plans a whole batch of assignments in queue order, counting each assignment against its agent's
 * concurrency and the cluster cap as it goes. A task no agent can take now is passed over, so it
 * does not hold back later tasks that another agent can take.
 *
 * Cost: tasks with the same type and required capabilities (a "shape") have the same candidate
 * agents, so each shape gets one candidate heap, built once from a capability index; a task then
 * costs O(log agents) instead of a scan of every agent. Thousands of tasks usually have few shapes.
 */
export function planDispatch(input: DispatchInput): Assignment[] {
	const assignments: Assignment[] = [];
	let clusterRoom = input.maxConcurrentTasks - input.runningTotal;
	const slots = openSlots(input.agents);
	let agentRoom = slots.reduce((sum, slot) => sum + slot.concurrency - slot.running, 0);
	if (clusterRoom <= 0 || agentRoom <= 0) return assignments;

	const byCapability = indexByCapability(slots);
	const heapsByShape = new Map<string, CandidateHeap>();

	for (const task of eligibleInQueueOrder(input.tasks, input.now)) {
		if (clusterRoom <= 0 || agentRoom <= 0) break;
		const shape = shapeOf(task);
		let candidates = heapsByShape.get(shape);
		if (!candidates) {
			candidates = candidateHeap(task, byCapability);
			heapsByShape.set(shape, candidates);
		}
		const slot = candidates.takeBest();
		if (!slot) continue;
		slot.running++;
		clusterRoom--;
		agentRoom--;
		if (slot.running < slot.concurrency) candidates.push(slot);
		assignments.push({ task_id: task.task_id, agent_id: slot.id });
	}
	return assignments;
}

/** An agent that can take work, with its running count as the plan advances. */
interface AgentSlot {
	id: string;
	current_load: number;
	running: number;
	concurrency: number;
	capabilities: ReadonlySet<string>;
}

function openSlots(agents: readonly DispatchAgent[]): AgentSlot[] {
	return agents.filter(isOpenForWork).map(agent => ({
		id: agent.id,
		// An unreadable load must not poison the heap order (NaN compares false both ways): rank it as full.
		current_load: Number.isFinite(agent.current_load) ? agent.current_load : 1,
		running: agent.running_tasks,
		concurrency: agentConcurrency(agent),
		capabilities: new Set(agent.capabilities)
	}));
}

function indexByCapability(slots: readonly AgentSlot[]): Map<string, AgentSlot[]> {
	const index = new Map<string, AgentSlot[]>();
	for (const slot of slots) {
		for (const capability of slot.capabilities) {
			const holders = index.get(capability);
			if (holders) holders.push(slot);
			else index.set(capability, [slot]);
		}
	}
	return index;
}

function eligibleInQueueOrder(tasks: readonly DispatchTask[], now: number): DispatchTask[] {
	// Sort keys computed once: parsing ISO times inside the comparator would repeat it n log n times.
	const keyed = tasks
		.filter(task => task.not_before == null || task.not_before <= now)
		.map(task => ({ task, rank: priorityRank(task.priority), time: enqueueTime(task), seq: task.seq ?? 0 }));
	keyed.sort(
		(a, b) => a.rank - b.rank || a.time - b.time || a.seq - b.seq || compareIds(a.task.task_id, b.task.task_id)
	);
	return keyed.map(entry => entry.task);
}

function shapeOf(task: DispatchTask): string {
	const required = [...new Set(task.required_capabilities)].sort();
	// NUL as separator: no real capability name contains it, so two shapes never share a key.
	return [task.type, ...required].join("\u0000");
}

function candidateHeap(task: DispatchTask, byCapability: ReadonlyMap<string, AgentSlot[]>): CandidateHeap {
	const heap = new CandidateHeap();
	const seen = new Set<AgentSlot>();
	for (const capability of [task.type, GENERIC_CAPABILITY]) {
		for (const slot of byCapability.get(capability) ?? []) {
			if (seen.has(slot)) continue;
			seen.add(slot);
			if (hasCapabilitiesFor(slot.capabilities, task)) heap.push(slot);
		}
	}
	return heap;
}

interface HeapEntry {
	slot: AgentSlot;
	/** The slot's running count when pushed: an agent picked through another shape's heap makes it stale. */
	running: number;
}

/**
 * Min-heap of candidate agents by preference. An agent sits in the heap of every shape it serves;
 * an assignment through one heap leaves the others stale. Running counts only grow, so a stale
 * entry ranks too early, never too late: popping it and pushing it back with its real count fixes it.
 */
class CandidateHeap {
	private readonly entries: HeapEntry[] = [];

	push(slot: AgentSlot): void {
		this.entries.push({ slot, running: slot.running });
		this.siftUp(this.entries.length - 1);
	}

	/** Removes and returns the preferred agent that still has room, if any. */
	takeBest(): AgentSlot | undefined {
		for (let entry = this.pop(); entry; entry = this.pop()) {
			const { slot } = entry;
			if (slot.running >= slot.concurrency) continue;
			if (entry.running !== slot.running) {
				this.push(slot);
				continue;
			}
			return slot;
		}
		return undefined;
	}

	private pop(): HeapEntry | undefined {
		const top = this.entries[0];
		const last = this.entries.pop();
		if (top !== last && last) {
			this.entries[0] = last;
			this.siftDown(0);
		}
		return top;
	}

	private before(i: number, j: number): boolean {
		const a = this.entries[i];
		const b = this.entries[j];
		return (
			compareAgentPreference(
				{ id: a.slot.id, current_load: a.slot.current_load, running_tasks: a.running },
				{ id: b.slot.id, current_load: b.slot.current_load, running_tasks: b.running }
			) < 0
		);
	}

	private siftUp(index: number): void {
		for (let i = index; i > 0; ) {
			const parent = (i - 1) >> 1;
			if (!this.before(i, parent)) return;
			this.swap(i, parent);
			i = parent;
		}
	}

	private siftDown(index: number): void {
		const size = this.entries.length;
		for (let i = index; ; ) {
			const left = 2 * i + 1;
			const right = left + 1;
			let first = i;
			if (left < size && this.before(left, first)) first = left;
			if (right < size && this.before(right, first)) first = right;
			if (first === i) return;
			this.swap(i, first);
			i = first;
		}
	}

	private swap(i: number, j: number): void {
		[this.entries[i], this.entries[j]] = [this.entries[j], this.entries[i]];
	}
}
