/**
 * Live events applied to what the panel holds, as pure functions (unit-tested without a browser):
 * task rows, agents, and the `seq` check that tells the panel it missed events.
 */
import type { Agent, AgentUpdateMessage, Task, TaskUpdateMessage } from "../../../src/types";

/**
 * Each gateway node numbers its events 1, 2, 3...: a number that is not the previous one plus one
 * means events were lost (or the connection moved to another node), and what is shown is stale.
 */
export class SeqTracker {
	private last: number | null = null;

	/** True when `seq` shows a gap since the previous event. Events without `seq` are not judged. */
	observe(seq: number | undefined): boolean {
		if (typeof seq !== "number") return false;
		const gap = this.last !== null && seq !== this.last + 1;
		this.last = seq;
		return gap;
	}

	/** A new connection: its first event starts a new count. */
	reset(): void {
		this.last = null;
	}
}

export interface TaskRows {
	rows: Task[];
	/** task_id → its index in `rows`. */
	index: Map<string, number>;
}

export function taskRows(rows: Task[]): TaskRows {
	return { rows, index: new Map(rows.map((t, i) => [t.task_id, i])) };
}

export interface TaskUpdateOutcome {
	/** The same object when nothing it holds changed. */
	next: TaskRows;
	/** Tasks the events named that are not held (new tasks, or outside what was loaded). */
	unknown: string[];
}

/** Applies a batch of `task_update` events; the last event of a task wins. */
export function applyTaskUpdates(current: TaskRows, updates: readonly TaskUpdateMessage[]): TaskUpdateOutcome {
	let rows: Task[] | null = null;
	const unknown = new Set<string>();
	for (const u of updates) {
		const at = current.index.get(u.task_id);
		if (at === undefined) {
			unknown.add(u.task_id);
			continue;
		}
		const source = rows ?? current.rows;
		const row = source[at];
		if (row.status === u.status && row.progress === u.progress && row.assigned_agent === u.assigned_agent && row.updated_at >= u.timestamp) continue;
		rows ??= current.rows.slice();
		rows[at] = { ...row, status: u.status, progress: u.progress, assigned_agent: u.assigned_agent, updated_at: u.timestamp };
	}
	return { next: rows ? { rows, index: current.index } : current, unknown: [...unknown] };
}

/** Newest first (as the server lists them), each task once: the first copy wins. */
export function newestFirst(...lists: Array<readonly Task[]>): Task[] {
	const seen = new Set<string>();
	const out: Task[] = [];
	for (const list of lists) for (const t of list) if (!seen.has(t.task_id)) (seen.add(t.task_id), out.push(t));
	return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
}

/** Adds (or refreshes) tasks fetched after an event named them, keeping at most `limit` rows. */
export function addTasks(current: TaskRows, tasks: readonly Task[], limit: number): TaskRows {
	if (tasks.length === 0) return current;
	return taskRows(newestFirst(tasks, current.rows).slice(0, limit));
}

export interface AgentUpdateOutcome {
	agents: Agent[];
	/** The event named an agent not held: the list should be fetched again. */
	unknown: boolean;
}

export function applyAgentUpdate(agents: readonly Agent[], u: AgentUpdateMessage): AgentUpdateOutcome {
	const at = agents.findIndex(a => a.id === u.agent_id);
	if (at < 0) return { agents: agents as Agent[], unknown: true };
	const next = agents.slice();
	// Not `last_heartbeat`: a plain heartbeat is no event, and a status change is no heartbeat.
	next[at] = { ...agents[at], status: u.status, current_load: u.current_load };
	return { agents: next, unknown: false };
}

/** Delay before reconnect attempt `attempt` (0-based): exponential from 500 ms to 15 s, with jitter. */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
	const ceiling = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
	return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
