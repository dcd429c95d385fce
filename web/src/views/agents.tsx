/**
 * Agents: each one's status, load, running/slots, heartbeat age (ticking), capabilities and node;
 * the capability × capacity matrix; Drain and Remove for operators.
 */
import { agentConcurrency } from "../../../src/domain/tasks/dispatch";
import type { Agent } from "../../../src/types";
import { ActionButton, Age, Badge, Meter, Notice, Section } from "../components/common";
import { del, post } from "../lib/api";
import { useEvery, useLoad } from "../store/hooks";
import { agents, agentsTotal, loadAgents, loadOverview, overview } from "../store/store";
import { canOperate } from "./roles";

function AgentRow({ agent, operate }: { agent: Agent; operate: boolean }) {
	const slots = agentConcurrency(agent);
	return (
		<tr>
			<th scope="row">{agent.name}</th>
			<td>{agent.type}</td>
			<td><Badge status={agent.status} /></td>
			<td><Meter value={agent.current_load} label={`Load of ${agent.name}`} /></td>
			<td>{agent.running_tasks}/{slots}</td>
			<td><Age iso={agent.last_heartbeat} /></td>
			<td class="caps">{agent.capabilities.join(", ")}</td>
			<td>{agent.node_id ?? "—"}</td>
			{operate && (
				<td class="row-actions">
					{agent.status !== "draining" && agent.status !== "offline" && (
						<ActionButton label="Drain" run={() => post(`/agents/${encodeURIComponent(agent.id)}/drain`).then(loadAgents)} />
					)}
					<ActionButton
						label="Remove"
						danger
						confirm={`Remove agent ${agent.name}? Its running tasks go back to the queue.`}
						run={() => del(`/agents/${encodeURIComponent(agent.id)}`).then(loadAgents)}
					/>
				</td>
			)}
		</tr>
	);
}

function CapabilityMatrix() {
	const data = overview.value;
	if (!data) return null;
	const caps = [...new Set([...Object.keys(data.agents.by_capability), ...Object.keys(data.tasks.by_capability)])].sort();
	if (caps.length === 0) return <Notice>No capability is offered or asked for yet.</Notice>;
	return (
		<table>
			<caption class="sr-only">Capabilities: agents, slots used and free, and queued tasks</caption>
			<thead>
				<tr><th scope="col">Capability</th><th scope="col">Live agents</th><th scope="col">Slots used</th><th scope="col">Slots free</th><th scope="col">Queued</th></tr>
			</thead>
			<tbody>
				{caps.map(cap => {
					const a = data.agents.by_capability[cap] ?? { agents: 0, live: 0, slots: 0, used: 0 };
					const queued = data.tasks.by_capability[cap]?.queued ?? 0;
					const orphan = a.live === 0;
					return (
						<tr key={cap} class={orphan ? "orphan" : undefined}>
							<th scope="row">{cap}{orphan && <span class="flag"> no live agent</span>}</th>
							<td>{a.live}/{a.agents}</td>
							<td>{a.used}</td>
							<td>{Math.max(0, a.slots - a.used)}</td>
							<td>{queued}</td>
						</tr>
					);
				})}
			</tbody>
		</table>
	);
}

export function AgentsView() {
	useLoad(() => void loadAgents(), []);
	// A plain heartbeat is no event: the ages come from the list, fetched again now and then.
	useEvery(() => void loadAgents(), 5000);
	useEvery(() => void loadOverview(), 10_000);
	const operate = canOperate();
	const list = agents.value;
	return (
		<div class="stack">
			<Section title={`Agents (${agentsTotal.value})`}>
				{list.length === 0 ? (
					<Notice>No agent has registered. Start one with <code>npm run agent</code>, or run the server with LOCAL_AGENT=true.</Notice>
				) : (
					<div class="scroll-x" tabIndex={0} role="region" aria-label="Agents table">
						<table>
							<thead>
								<tr>
									<th scope="col">Name</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Load</th>
									<th scope="col">Running/slots</th><th scope="col">Heartbeat</th><th scope="col">Capabilities</th><th scope="col">Node</th>
									{operate && <th scope="col">Actions</th>}
								</tr>
							</thead>
							<tbody>
								{list.map(agent => <AgentRow key={agent.id} agent={agent} operate={operate} />)}
							</tbody>
						</table>
					</div>
				)}
			</Section>
			<Section title="Capabilities and capacity">
				<CapabilityMatrix />
			</Section>
		</div>
	);
}
