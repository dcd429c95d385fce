/** Overview: tasks by status, throughput, queue depth and success rate over the last minutes, agents against capacity. */
import { TASK_STATUSES } from "../../../src/types";
import { Chart } from "../components/chart";
import { Meter, Notice, Section } from "../components/common";
import { href } from "../lib/route";
import type { Overview } from "../lib/api-types";
import { useEvery } from "../store/hooks";
import { loadOverview, overview } from "../store/store";

const percent = (v: number) => `${Math.round(v * 100)}%`;

function historySeries(history: Overview["history"]) {
	const times = history.map(h => Date.parse(h.t) / 1000);
	const success = history.map(h => (h.completed + h.failed > 0 ? h.completed / (h.completed + h.failed) : null));
	return { times, success };
}

export function OverviewView() {
	// New buckets open every 10 s whether or not anything happened; events refresh it sooner.
	useEvery(() => void loadOverview(), 10_000);
	const data = overview.value;
	if (!data) return <Notice>Loading the overview…</Notice>;
	const { times, success } = historySeries(data.history);
	const { agents, tasks, runs } = data;
	return (
		<div class="grid">
			<Section title="Tasks by status">
				<ul class="counts">
					{TASK_STATUSES.map(status => (
						<li key={status}>
							<a href={href("tasks", [], { status })} class={`count s-${status}`}>
								<span class="count-n">{data.tasks.by_status[status] ?? 0}</span>
								<span class="count-label">{status}</span>
							</a>
						</li>
					))}
				</ul>
				<p>
					Queue depth <strong>{tasks.queue_depth}</strong> · pipeline runs succeeded{" "}
					<strong>{runs.success_ratio === null ? "—" : percent(runs.success_ratio)}</strong>
				</p>
			</Section>
			<Section title="Agents and capacity">
				<p>
					<strong>{agents.online}</strong> of {agents.total} agents online · <strong>{agents.used}</strong> of {agents.slots} slots in use
				</p>
				<Meter value={agents.slots ? agents.used / agents.slots : 0} label="Slots in use" />
				{agents.online === 0 && <Notice kind="error">No agent is online: queued tasks wait until one registers.</Notice>}
			</Section>
			<Section title="Throughput (per 10 s)">
				<Chart
					title="Tasks finished per 10 s"
					times={times}
					series={[
						{ label: "completed", values: data.history.map(h => h.completed), stroke: "#1a7f37" },
						{ label: "failed", values: data.history.map(h => h.failed), stroke: "#b42318" }
					]}
				/>
			</Section>
			<Section title="Queue depth">
				<Chart title="Tasks waiting" times={times} series={[{ label: "queued", values: data.history.map(h => h.queue_depth), stroke: "#1f4fd1" }]} />
			</Section>
			<Section title="Success rate">
				<Chart title="Share of finished tasks that completed" times={times} unit={percent} range={[0, 1]} series={[{ label: "success", values: success, stroke: "#6b3fa0" }]} />
			</Section>
		</div>
	);
}
