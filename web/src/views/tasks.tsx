/**
 * Tasks: filters (status, type, agent, pipeline) and search by id, over a windowed list that stays
 * fast at 10,000 rows. The filter lives in the address (`#/tasks?status=failed`), so it can be shared.
 * Changing it narrows the rows held at once; the server is asked for the new server-side part.
 */
import { useMemo } from "preact/hooks";
import { TASK_STATUSES, type Task } from "../../../src/types";
import { Badge, Meter, Notice, Section } from "../components/common";
import { VirtualTable } from "../components/virtual-list";
import { matchesTask, parseTaskFilter, type TaskFilter } from "../lib/filters";
import { href, type Route } from "../lib/route";
import { useLoad } from "../store/hooks";
import { agents } from "../store/store";
import { loadTasks, MAX_ROWS, tasks, tasksComplete, tasksError, tasksLoading, tasksTotal } from "../store/tasks";
import { BulkBar } from "./bulk";
import { canOperate } from "./roles";
import { TaskDetail } from "./task-detail";

const COLUMNS = [
	{ title: "Task", width: "minmax(12rem, 2fr)" },
	{ title: "Type", width: "minmax(7rem, 1fr)" },
	{ title: "Status", width: "7rem" },
	{ title: "Progress", width: "8rem" },
	{ title: "Agent", width: "minmax(7rem, 1fr)" },
	{ title: "Created", width: "11rem" }
];

function agentName(id: string | null): string {
	if (!id) return "—";
	return agents.value.find(a => a.id === id)?.name ?? id;
}

function TaskCells({ task }: { task: Task }) {
	return (
		<>
			<span role="cell"><a href={href("tasks", [task.task_id])}>{task.task_id}</a></span>
			<span role="cell">{task.type}</span>
			<span role="cell"><Badge status={task.status} /></span>
			<span role="cell"><Meter value={task.progress} label={`Progress of ${task.task_id}`} /></span>
			<span role="cell">{agentName(task.assigned_agent)}</span>
			<span role="cell"><time dateTime={task.created_at}>{new Date(task.created_at).toLocaleString()}</time></span>
		</>
	);
}

function setFilter(filter: TaskFilter): void {
	history.replaceState(null, "", href("tasks", [], { ...filter }));
	dispatchEvent(new HashChangeEvent("hashchange"));
}

function Filters({ filter }: { filter: TaskFilter }) {
	const field = (key: keyof TaskFilter) => (e: Event) => setFilter({ ...filter, [key]: (e.currentTarget as HTMLInputElement).value || undefined });
	return (
		<form class="filters" role="search" aria-label="Filter tasks" onSubmit={e => e.preventDefault()}>
			<label>
				Search by id
				<input type="search" name="search" value={filter.search ?? ""} onInput={field("search")} placeholder="task id" autoComplete="off" />
			</label>
			<label>
				Status
				<select name="status" value={filter.status ?? ""} onChange={field("status")}>
					<option value="">any</option>
					{TASK_STATUSES.map(s => <option key={s} value={s}>{s}</option>)}
				</select>
			</label>
			<label>
				Type
				<input name="type" value={filter.type ?? ""} onChange={field("type")} placeholder="any" />
			</label>
			<label>
				Agent
				<select name="agent_id" value={filter.agent_id ?? ""} onChange={field("agent_id")}>
					<option value="">any</option>
					{agents.value.map(a => <option key={a.id} value={a.id}>{a.name}</option>)}
				</select>
			</label>
			<label>
				Pipeline
				<input name="pipeline_id" value={filter.pipeline_id ?? ""} onChange={field("pipeline_id")} placeholder="any" />
			</label>
		</form>
	);
}

function TaskList({ filter }: { filter: TaskFilter }) {
	// After a resync the rows are marked stale (app.tsx), so this fetches them again.
	useLoad(() => void loadTasks(filter), [filter.status, filter.type, filter.agent_id, filter.pipeline_id]);
	const rows = tasks.value.rows;
	const visible = useMemo(() => rows.filter(t => matchesTask(t, filter)), [rows, filter.status, filter.type, filter.agent_id, filter.pipeline_id, filter.search]);
	const total = tasksTotal.value;
	return (
		<Section title="Tasks" actions={canOperate() && <BulkBar filter={filter} />}>
			<Filters filter={filter} />
			<p class="muted" role="status" aria-live="polite" data-testid="task-count">
				{visible.length} shown{!tasksComplete() && ` · ${rows.length} of ${total} loaded`}
				{tasksLoading.value && " · loading…"}
				{!tasksComplete() && rows.length >= MAX_ROWS && " · narrow the filter to see the rest"}
			</p>
			{tasksError.value && <Notice kind="error">{tasksError.value}</Notice>}
			{filter.search && visible.length === 0 && (
				<p>
					Not among the rows loaded: <a href={href("tasks", [filter.search])}>open task {filter.search}</a>
				</p>
			)}
			<VirtualTable items={visible} label="Tasks" columns={COLUMNS} rowKey={t => t.task_id} row={t => <TaskCells task={t} />} />
		</Section>
	);
}

export function TasksView({ route }: { route: Route }) {
	const filter = parseTaskFilter(route.query);
	if (route.parts[0]) return <TaskDetail id={route.parts[0]} />;
	return <TaskList filter={filter} />;
}
