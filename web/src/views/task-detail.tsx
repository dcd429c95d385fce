/**
 * One task: status, progress, attempts, logs, error and result, kept live; Cancel and Retry for
 * operators; and for a task that waits, why: each agent and the reason it is not chosen.
 */
import type { Task } from "../../../src/types";
import { ActionButton, Age, Badge, Json, Meter, Notice, Section } from "../components/common";
import { get, post } from "../lib/api";
import type { TaskExplanation, WaitReason } from "../lib/api-types";
import { href } from "../lib/route";
import { useResource } from "../lib/use-resource";
import { canOperate } from "./roles";

const REASONS: Record<WaitReason, string> = {
	missing_capability: "lacks a capability the task needs",
	at_concurrency: "is running as many tasks as it has slots",
	draining: "is draining (takes no new work)",
	offline: "is offline (no heartbeat)",
	not_active: "is not active",
	breaker_open: "failed deliveries recently (circuit open)",
	cluster_limit: "the cluster runs MAX_CONCURRENT_TASKS already",
	backoff: "the task waits out its retry backoff"
};
const SHOWN_LOG_LINES = 500;

function WhyItWaits({ task }: { task: Task }) {
	const explain = useResource(`explain:${task.task_id}:${task.status}:${task.updated_at}`, () =>
		get<TaskExplanation>(`/tasks/${encodeURIComponent(task.task_id)}/explain`)
	);
	const data = explain.data;
	if (explain.error) return <Notice kind="error">{explain.error}</Notice>;
	if (!data) return <Notice>Asking the dispatcher…</Notice>;
	return (
		<Section title="Why it waits">
			{data.not_before && <p>Not before <time dateTime={data.not_before}>{new Date(data.not_before).toLocaleString()}</time> (retry backoff).</p>}
			{data.cluster.full && <p>The cluster is full: {data.cluster.running} of {data.cluster.max} tasks running.</p>}
			{data.agents.length === 0 ? (
				<Notice kind="error">No agent is registered: the task waits until one registers.</Notice>
			) : (
				<ul class="explain" data-testid="explain">
					{data.agents.map(a => (
						<li key={a.agent_id} class={a.eligible ? "eligible" : undefined}>
							<strong>{a.name}</strong> <Badge status={a.status} />{" "}
							{a.eligible
								? "could take it"
								: a.reasons.map(r => (r === "missing_capability" && a.missing_capabilities.length ? `lacks ${a.missing_capabilities.join(", ")}` : REASONS[r] ?? r)).join("; ")}
						</li>
					))}
				</ul>
			)}
		</Section>
	);
}

function Facts({ task }: { task: Task }) {
	return (
		<dl class="facts">
			<dt>Status</dt><dd><Badge status={task.status} /></dd>
			<dt>Type</dt><dd>{task.type}</dd>
			<dt>Progress</dt><dd><Meter value={task.progress} label="Progress" /></dd>
			<dt>Attempts</dt><dd>{task.attempt} of {task.retry_count + 1}</dd>
			<dt>Agent</dt><dd>{task.assigned_agent ?? "—"}</dd>
			<dt>Pipeline</dt>
			<dd>{task.pipeline_id ? <a href={href("pipelines", task.run_id ? [task.pipeline_id, "runs", task.run_id] : [task.pipeline_id])}>{task.pipeline_id}</a> : "—"}{task.stage !== null && ` · stage ${task.stage}`}</dd>
			<dt>Priority</dt><dd>{task.priority}</dd>
			<dt>Created</dt><dd><Age iso={task.created_at} /></dd>
			<dt>Updated</dt><dd><Age iso={task.updated_at} /></dd>
			<dt>Created by</dt><dd>{task.created_by ?? "—"}</dd>
		</dl>
	);
}

export function TaskDetail({ id }: { id: string }) {
	const resource = useResource(`task:${id}`, () => get<Task>(`/tasks/${encodeURIComponent(id)}`), m => m.type === "task_update" && m.task_id === id);
	const task = resource.data;
	const path = `/tasks/${encodeURIComponent(id)}`;
	if (resource.error && !task) return <Notice kind="error">{resource.error}</Notice>;
	if (!task) return <Notice>Loading task {id}…</Notice>;
	const open = task.status === "pending" || task.status === "running" || task.status === "retrying";
	const logs = task.logs.slice(-SHOWN_LOG_LINES);
	return (
		<div class="stack">
			<p><a href={href("tasks")}>← All tasks</a></p>
			<Section
				title={`Task ${task.task_id}`}
				actions={
					canOperate() && (
						<>
							{open && <ActionButton label="Cancel" danger confirm={`Cancel task ${task.task_id}?`} run={() => post(`${path}/cancel`).then(resource.reload)} />}
							{(task.status === "failed" || task.status === "cancelled") && <ActionButton label="Retry" run={() => post(`${path}/retry`).then(resource.reload)} />}
						</>
					)
				}
			>
				<Facts task={task} />
				{task.error && <Notice kind="error">{task.error}</Notice>}
			</Section>
			{(task.status === "pending" || task.status === "retrying") && <WhyItWaits task={task} />}
			<Section title={`Logs (${task.logs.length})`}>
				{task.logs.length > logs.length && <p class="muted">The last {logs.length} lines.</p>}
				<ol class="logs" tabIndex={0} aria-label="Task logs">
					{logs.map((l, i) => (
						<li key={i} class={`log-${l.level}`}>
							<time dateTime={l.timestamp}>{l.timestamp.slice(11, 23)}</time> <span class="lvl">{l.level}</span> {l.message}
						</li>
					))}
				</ol>
			</Section>
			<Section title="Result">
				<Json value={task.result} label="Task result" />
			</Section>
			<Section title="Payload">
				<Json value={task.payload} label="Task payload" />
			</Section>
		</div>
	);
}
