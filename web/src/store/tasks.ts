/**
 * The task list: rows fetched page by page (GET /tasks, 1000 a page, up to MAX_ROWS) for the
 * server-side part of the filter, kept current by `task_update` events in batches; tasks that an
 * event names but the list does not hold are fetched (a few by id, a burst as the newest page).
 */
import { signal } from "@preact/signals";
import type { Task, TaskUpdateMessage } from "../../../src/types";
import { errorText, get } from "../lib/api";
import type { TaskPage } from "../lib/api-types";
import { matchesTask, narrows, serverFilter, type ServerFilter } from "../lib/filters";
import { throttle } from "../lib/schedule";
import { addTasks, applyTaskUpdates, newestFirst, taskRows, type TaskRows } from "./reducers";

export const PAGE = 1000;
export const MAX_ROWS = 10_000;
/** Unknown tasks fetched one by one; more than this in a batch: the newest page instead. */
const FETCH_ONE_BY_ONE = 20;

export const tasks = signal<TaskRows>(taskRows([]));
export const tasksTotal = signal(0);
export const tasksLoading = signal(false);
export const tasksError = signal<string | null>(null);

let loaded: ServerFilter | null = null;
/** Every task the server holds for `loaded` is in the rows (not cut at MAX_ROWS, not still paging). */
let complete = false;
let generation = 0;

async function fetchPages(filter: ServerFilter, gen: number): Promise<void> {
	// Rows held that fit the new filter stay shown while its pages come (no blank list on a wider filter).
	const keep = tasks.value.rows.filter(t => matchesTask(t, filter));
	let rows: Task[] = [];
	for (let offset = 0; offset < MAX_ROWS; offset += PAGE) {
		const page = await get<TaskPage>("/tasks", { ...filter, limit: PAGE, offset });
		if (gen !== generation) return;
		rows = rows.concat(page.tasks);
		tasksTotal.value = page.total;
		const last = page.tasks.length < PAGE || rows.length >= page.total;
		tasks.value = taskRows(last ? rows : newestFirst(rows, keep).slice(0, MAX_ROWS));
		if (last) return void (complete = true);
	}
}

/**
 * Shows the rows for `filter`'s server-side fields. When everything for a wider filter is held, a
 * narrower one needs no fetch: the view narrows them itself. `force` fetches again regardless.
 */
export async function loadTasks(filter: ServerFilter, force = false): Promise<void> {
	const wanted = serverFilter(filter);
	if (!force && loaded && complete && narrows(loaded, wanted)) return;
	loaded = wanted;
	complete = false;
	const gen = ++generation;
	tasksLoading.value = true;
	try {
		await fetchPages(wanted, gen);
		tasksError.value = null;
	} catch (err) {
		if (gen === generation) tasksError.value = errorText(err);
	} finally {
		if (gen === generation) tasksLoading.value = false;
	}
}

/** Events may have been missed: the next `loadTasks` fetches again, and the list shown now does so at once. */
export function markTasksStale(): void {
	loaded = null;
	complete = false;
}

/** Whether the rows are all the server holds for the filter they were fetched for. */
export const tasksComplete = () => complete && !tasksLoading.value;

let pending: TaskUpdateMessage[] = [];

async function fetchUnknown(ids: string[]): Promise<void> {
	const filter = loaded;
	if (!filter) return;
	const gen = generation;
	const found =
		ids.length <= FETCH_ONE_BY_ONE
			? (await Promise.all(ids.map(id => get<Task>(`/tasks/${encodeURIComponent(id)}`).catch(() => null)))).filter((t): t is Task => !!t)
			: (await get<TaskPage>("/tasks", { ...filter, limit: PAGE })).tasks;
	if (gen !== generation) return;
	const fitting = found.filter(t => matchesTask(t, filter));
	const before = tasks.value.rows.length;
	tasks.value = addTasks(tasks.value, fitting, MAX_ROWS);
	tasksTotal.value += tasks.value.rows.length - before;
}

const flush = throttle(() => {
	const batch = pending;
	pending = [];
	if (!loaded || batch.length === 0) return;
	const outcome = applyTaskUpdates(tasks.value, batch);
	tasks.value = outcome.next;
	// Only those that could be in the list (the event has no `type`: that part is checked once fetched).
	const filter = loaded;
	const candidates = batch.filter(u => outcome.unknown.includes(u.task_id) && matchesTask(u, { ...filter, type: undefined }));
	const ids = [...new Set(candidates.map(u => u.task_id))];
	if (ids.length) void fetchUnknown(ids).catch(() => undefined);
}, 150);

export function queueTaskUpdate(update: TaskUpdateMessage): void {
	pending.push(update);
	flush();
}
