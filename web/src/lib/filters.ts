/**
 * The task list's filter: parsed from the hash query, turned into the REST query and the bulk
 * filter, and matched against rows in the browser (instant narrowing while the server is asked).
 */
import { TASK_STATUSES, type Task, type TaskStatus } from "../../../src/types";

export interface TaskFilter {
	status?: TaskStatus;
	type?: string;
	agent_id?: string;
	pipeline_id?: string;
	/** Part of a task id (matched in the browser; a whole id is also looked up on the server). */
	search?: string;
}

/** The fields the server filters on (GET /tasks, POST /tasks/bulk). */
export const SERVER_FIELDS = ["status", "type", "agent_id", "pipeline_id"] as const;
export type ServerFilter = Pick<TaskFilter, (typeof SERVER_FIELDS)[number]>;

const MAX_FIELD = 200;

function clean(value: string | null): string | undefined {
	const trimmed = value?.trim();
	return trimmed ? trimmed.slice(0, MAX_FIELD) : undefined;
}

export function parseTaskFilter(query: URLSearchParams): TaskFilter {
	const filter: TaskFilter = {};
	const status = clean(query.get("status"));
	if (status && (TASK_STATUSES as readonly string[]).includes(status)) filter.status = status as TaskStatus;
	for (const key of ["type", "agent_id", "pipeline_id", "search"] as const) {
		const value = clean(query.get(key));
		if (value) filter[key] = value;
	}
	return filter;
}

export function serverFilter(filter: TaskFilter): ServerFilter {
	const out: ServerFilter = {};
	for (const key of SERVER_FIELDS) if (filter[key]) (out as Record<string, string>)[key] = filter[key]!;
	return out;
}

/** Whether `narrower` asks for a subset of `wider`: every server-side field `wider` sets, `narrower` sets the same. */
export function narrows(wider: TaskFilter, narrower: TaskFilter): boolean {
	return SERVER_FIELDS.every(key => !wider[key] || wider[key] === narrower[key]);
}

/** Whether a task (or an event about one, which has no `type`) fits the filter. */
export function matchesTask(task: Pick<Task, "task_id" | "status" | "assigned_agent" | "pipeline_id"> & { type?: string }, filter: TaskFilter): boolean {
	if (filter.status && task.status !== filter.status) return false;
	if (filter.type && task.type !== filter.type) return false;
	if (filter.agent_id && task.assigned_agent !== filter.agent_id) return false;
	if (filter.pipeline_id && task.pipeline_id !== filter.pipeline_id) return false;
	if (filter.search && !task.task_id.toLowerCase().includes(filter.search.toLowerCase())) return false;
	return true;
}

/** Human words for a filter, for bulk confirmations ("status failed, type analysis"). */
export function describeFilter(filter: ServerFilter): string {
	const parts = SERVER_FIELDS.filter(key => filter[key]).map(key => `${key.replace("_id", "")} ${filter[key]}`);
	return parts.length ? parts.join(", ") : "all tasks";
}
