/** One run: its DAG, live (progress events and its stage tasks' updates), a stage's result on click, Cancel and Retry. */
import { useMemo, useState } from "preact/hooks";
import type { Pipeline, Task } from "../../../src/types";
import { ActionButton, Badge, Json, Meter, Notice, Section } from "../components/common";
import { get, post } from "../lib/api";
import type { RunView as Run, TaskPage } from "../lib/api-types";
import { href } from "../lib/route";
import { useResource } from "../lib/use-resource";
import { canOperate } from "./roles";
import { RunDag } from "./run-dag";

export function RunView({ pipelineId, runId }: { pipelineId: string; runId: string }) {
	const base = `/pipelines/${encodeURIComponent(pipelineId)}`;
	const runPath = `${base}/runs/${encodeURIComponent(runId)}`;
	const isRun = (m: { run_id?: string | null }) => m.run_id === runId;
	const pipeline = useResource(`def:${pipelineId}`, () => get<Pipeline>(base));
	const run = useResource(`run:${runId}`, () => get<Run>(runPath), m => m.type === "pipeline_progress" && isRun(m));
	const stageTasks = useResource(`run-tasks:${runId}`, () => get<TaskPage>("/tasks", { run_id: runId, limit: 1000 }), m => m.type === "task_update" && isRun(m));
	const [selected, setSelected] = useState<number | null>(null);
	const byId = useMemo(() => new Map((stageTasks.data?.tasks ?? []).map(t => [t.task_id, t] as [string, Task])), [stageTasks.data]);
	const r = run.data;
	const p = pipeline.data;
	if ((run.error || pipeline.error) && !r) return <Notice kind="error">{run.error ?? pipeline.error}</Notice>;
	if (!r || !p) return <Notice>Loading run…</Notice>;
	const stage = selected === null ? null : r.stages[selected];
	const refresh = () => {
		run.reload();
		stageTasks.reload();
	};
	return (
		<div class="stack">
			<p><a href={href("pipelines", [pipelineId])}>← Pipeline {p.name}</a></p>
			<Section
				title={`Run ${r.run_id}`}
				actions={
					canOperate() && (
						<>
							{r.status === "running" && <ActionButton label="Cancel" danger confirm="Cancel this run and its running stages?" run={() => post(`${runPath}/cancel`).then(refresh)} />}
							{(r.status === "failed" || r.status === "cancelled") && <ActionButton label="Retry" run={() => post(`${runPath}/retry`).then(refresh)} />}
						</>
					)
				}
			>
				<p>
					<Badge status={r.status} /> <span data-testid="run-status">{r.status}</span> · {r.completed_stages.length} of {r.stages.length} stages done{" "}
					<Meter value={r.progress} label="Run progress" />
				</p>
				<div class="scroll-x" tabIndex={0} role="region" aria-label="Run graph">
					<RunDag pipeline={p} stages={r.stages} tasks={byId} selected={selected} onSelect={setSelected} />
				</div>
			</Section>
			{stage && (
				<Section title={`Stage ${stage.index}: ${stage.name}`}>
					<p>
						<Badge status={stage.status} /> {stage.task_id && <a href={href("tasks", [stage.task_id])}>task {stage.task_id}</a>}
					</p>
					{stage.error && <Notice kind="error">{stage.error}</Notice>}
					<Json value={stage.result} label={`Result of stage ${stage.name}`} />
				</Section>
			)}
		</div>
	);
}
