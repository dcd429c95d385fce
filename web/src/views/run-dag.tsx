/**
 * A run drawn as its DAG: dagre lays the stages out (loaded on first use, its own chunk), SVG
 * draws them with status colours, durations and progress. A stage is a button: it shows its result.
 */
import { useEffect, useState } from "preact/hooks";
import type { Pipeline, RunStage, StageDependency, Task } from "../../../src/types";
import { formatDuration } from "../components/common";
import { now } from "../store/store";

const NODE_W = 172;
const NODE_H = 70;

interface Layout {
	width: number;
	height: number;
	nodes: Array<{ index: number; x: number; y: number }>;
	edges: Array<{ from: number; to: number; points: Array<{ x: number; y: number }> }>;
}

/** The pipeline's edges; none declared means the stages run in order. */
export function edgesOf(pipeline: Pick<Pipeline, "stages" | "dependencies">): StageDependency[] {
	if (pipeline.dependencies.length) return pipeline.dependencies;
	return pipeline.stages.slice(1).map((_, i) => ({ from: i, to: i + 1 }));
}

async function layout(count: number, edges: StageDependency[]): Promise<Layout> {
	const { default: dagre } = await import("@dagrejs/dagre");
	const g = new dagre.graphlib.Graph();
	g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 36, marginx: 8, marginy: 8 });
	g.setDefaultEdgeLabel(() => ({}));
	for (let i = 0; i < count; i++) g.setNode(String(i), { width: NODE_W, height: NODE_H });
	for (const e of edges) g.setEdge(String(e.from), String(e.to));
	dagre.layout(g);
	const graph = g.graph();
	return {
		width: graph.width ?? 0,
		height: graph.height ?? 0,
		nodes: g.nodes().map(id => ({ index: Number(id), x: g.node(id).x, y: g.node(id).y })),
		edges: g.edges().map(e => ({ from: Number(e.v), to: Number(e.w), points: g.edge(e).points ?? [] }))
	};
}

function duration(task: Task | undefined, nowMs: number): string {
	if (!task?.started_at) return "";
	const end = task.finished_at ? Date.parse(task.finished_at) : nowMs;
	return formatDuration(end - Date.parse(task.started_at));
}

interface Props {
	pipeline: Pick<Pipeline, "stages" | "dependencies">;
	stages: RunStage[];
	tasks: Map<string, Task>;
	selected: number | null;
	onSelect(index: number): void;
}

export function RunDag({ pipeline, stages, tasks, selected, onSelect }: Props) {
	const [shape, setShape] = useState<Layout | null>(null);
	const edgeKey = JSON.stringify(edgesOf(pipeline));
	useEffect(() => {
		let live = true;
		void layout(pipeline.stages.length, edgesOf(pipeline)).then(l => live && setShape(l));
		return () => void (live = false);
	}, [pipeline.stages.length, edgeKey]);
	if (!shape) return <p class="muted">Laying out the graph…</p>;
	const nowMs = now.value;
	return (
		<svg class="dag" role="group" aria-label="Run stages" width={shape.width} height={shape.height} viewBox={`0 0 ${shape.width} ${shape.height}`}>
			<defs>
				<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
					<path d="M0,0 L10,5 L0,10 z" class="dag-arrow" />
				</marker>
			</defs>
			{shape.edges.map(e => (
				<polyline key={`${e.from}-${e.to}`} class="dag-edge" marker-end="url(#arrow)" points={e.points.map(p => `${p.x},${p.y}`).join(" ")} />
			))}
			{shape.nodes.map(n => {
				const stage = stages[n.index];
				const status = stage?.status ?? "waiting";
				const task = stage?.task_id ? tasks.get(stage.task_id) : undefined;
				const progress = status === "completed" ? 1 : task?.progress ?? 0;
				const time = duration(task, nowMs);
				const full = stage?.name ?? pipeline.stages[n.index]?.name ?? `stage ${n.index}`;
				const name = full.length > 20 ? `${full.slice(0, 19)}…` : full;
				const activate = () => onSelect(n.index);
				return (
					<g
						key={n.index}
						class={`dag-node s-${status}${selected === n.index ? " selected" : ""}`}
						transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
						role="button"
						// Lower case: on SVG elements the attribute keeps its case, and only `tabindex` makes them focusable.
						tabindex={0}
						aria-pressed={selected === n.index}
						data-stage={n.index}
						data-status={status}
						onClick={activate}
						onKeyDown={e => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), activate())}
					>
						<rect width={NODE_W} height={NODE_H} rx="6" />
						{/* Its name: what it shows (so it can be called by that), after the stage's number. */}
						<title>{`Stage ${n.index} ${full} ${status}${time ? ` · ${time}` : ""}`}</title>
						<text x="10" y="22" class="dag-name">{name}</text>
						<text x="10" y="42" class="dag-status">{status}{time && ` · ${time}`}</text>
						<rect x="10" y="52" width={NODE_W - 20} height="6" rx="3" class="dag-track" />
						<rect x="10" y="52" width={(NODE_W - 20) * Math.max(0, Math.min(1, progress))} height="6" rx="3" class="dag-progress" />
					</g>
				);
			})}
		</svg>
	);
}
