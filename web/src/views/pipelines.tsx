/**
 * Pipelines: the definitions, one pipeline with its runs, and one run drawn live as its DAG.
 * Operators create pipelines (the six-stage template or any JSON), execute them, cancel and retry runs.
 */
import type { Pipeline } from "../../../src/types";
import { Age, Badge, Notice, Section } from "../components/common";
import { JsonForm } from "../components/json-form";
import { get, post } from "../lib/api";
import type { PipelinePage, PipelineWithRuns } from "../lib/api-types";
import { href, type Route } from "../lib/route";
import { useResource } from "../lib/use-resource";
import { canOperate } from "./roles";
import { pretty, SAMPLE_EXECUTION, SIX_STAGE_TEMPLATE } from "./pipeline-template";
import { RunView } from "./run-view";

const go = (hash: string) => (location.hash = hash);
const pipelinePath = (id: string) => `/pipelines/${encodeURIComponent(id)}`;

function PipelineList() {
	const list = useResource("pipelines", () => get<PipelinePage>("/pipelines", { limit: 200 }));
	return (
		<div class="stack">
			<Section title={`Pipelines (${list.data?.total ?? "…"})`}>
				{list.error && <Notice kind="error">{list.error}</Notice>}
				{list.data && list.data.pipelines.length === 0 && <Notice>No pipeline yet{canOperate() ? ": create one below." : "."}</Notice>}
				<ul class="plain">
					{list.data?.pipelines.map(p => (
						<li key={p.pipeline_id}>
							<a href={href("pipelines", [p.pipeline_id])}>{p.name}</a> <span class="muted">· {p.stages.length} stages · {p.pipeline_id}</span>
						</li>
					))}
				</ul>
			</Section>
			{canOperate() && (
				<Section title="Create a pipeline">
					<p class="muted">The spec's six-stage pipeline; edit it, or paste any definition.</p>
					<JsonForm
						label="Pipeline definition (JSON)"
						initial={pretty(SIX_STAGE_TEMPLATE)}
						submit="Create"
						rows={16}
						onSubmit={async body => {
							const created = await post<Pipeline>("/pipelines", body);
							go(href("pipelines", [created.pipeline_id]));
						}}
					/>
				</Section>
			)}
		</div>
	);
}

function PipelineDetail({ id }: { id: string }) {
	const pipeline = useResource(`pipeline:${id}`, () => get<PipelineWithRuns>(pipelinePath(id)), m => m.type === "pipeline_progress" && m.pipeline_id === id, 1000);
	const p = pipeline.data;
	if (pipeline.error && !p) return <Notice kind="error">{pipeline.error}</Notice>;
	if (!p) return <Notice>Loading pipeline…</Notice>;
	return (
		<div class="stack">
			<p><a href={href("pipelines")}>← All pipelines</a></p>
			<Section title={`Pipeline ${p.name}`}>
				{p.description && <p>{p.description}</p>}
				<ol class="stages">
					{p.stages.map((s, i) => <li key={i}>{s.name} <span class="muted">({s.type}{s.required === false ? ", optional" : ""})</span></li>)}
				</ol>
			</Section>
			{canOperate() && (
				<Section title="Execute">
					<JsonForm
						label="Execution input (JSON)"
						initial={pretty(SAMPLE_EXECUTION)}
						submit="Execute"
						rows={6}
						onSubmit={async body => {
							const run = await post<{ run_id: string }>(`${pipelinePath(id)}/execute`, body);
							go(href("pipelines", [id, "runs", run.run_id]));
						}}
					/>
				</Section>
			)}
			<Section title={`Runs (${p.runs.length})`}>
				{p.runs.length === 0 ? (
					<Notice>No run yet.</Notice>
				) : (
					<table>
						<thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Stages done</th><th scope="col">Started</th><th scope="col">By</th></tr></thead>
						<tbody>
							{p.runs.map(r => (
								<tr key={r.run_id}>
									<th scope="row"><a href={href("pipelines", [id, "runs", r.run_id])}>{r.run_id}</a></th>
									<td><Badge status={r.status} /></td>
									<td>{r.completed_stages.length}/{p.stages.length}</td>
									<td><Age iso={r.created_at} /></td>
									<td>{r.created_by ?? "—"}</td>
								</tr>
							))}
						</tbody>
					</table>
				)}
			</Section>
		</div>
	);
}

export function PipelinesView({ route }: { route: Route }) {
	const [id, sub, runId] = route.parts;
	if (id && sub === "runs" && runId) return <RunView pipelineId={id} runId={runId} />;
	if (id) return <PipelineDetail id={id} />;
	return <PipelineList />;
}
