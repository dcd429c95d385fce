/**
 * Cluster events (Moleculer payloads) → the spec's wire messages. Payloads come from other
 * services and, across a cluster, from other versions of them: anything malformed becomes
 * `null` (dropped) instead of an exception in an event handler or a half-filled message.
 */
import {
	EVENTS,
	type AgentUpdateMessage, type ClusterMessage, type ErrorMessage, type PipelineProgressMessage, type TaskUpdateMessage
} from "../../types";

/** The Moleculer events the realtime channels relay, in one place so the service and tests agree. */
export const RELAYED_EVENTS = [EVENTS.taskUpdated, EVENTS.agentUpdated, EVENTS.pipelineProgress, EVENTS.error] as const;
export type RelayedEvent = (typeof RELAYED_EVENTS)[number];

type Fields = Record<string, unknown>;

function record(value: unknown): Fields | null {
	return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Fields) : null;
}

function text(value: unknown): string | null {
	return typeof value === "string" && value !== "" ? value : null;
}

function finite(value: unknown, fallback: number): number {
	return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

export function taskUpdateMessage(payload: unknown, timestamp: string): TaskUpdateMessage | null {
	const task = record(record(payload)?.task);
	const taskId = text(task?.task_id);
	const status = text(task?.status);
	if (!task || !taskId || !status) return null;
	return {
		type: "task_update",
		task_id: taskId,
		pipeline_id: text(task.pipeline_id),
		run_id: text(task.run_id),
		assigned_agent: text(task.assigned_agent),
		status: status as TaskUpdateMessage["status"],
		progress: finite(task.progress, 0),
		timestamp
	};
}

export function agentUpdateMessage(payload: unknown, timestamp: string): AgentUpdateMessage | null {
	const event = record(payload);
	const agent = record(event?.agent);
	const agentId = text(agent?.id);
	const status = text(agent?.status);
	if (!agent || !agentId || !status) return null;
	return {
		type: "agent_update",
		agent_id: agentId,
		// A deregistered agent is gone for good, whatever status it last had.
		status: (event?.removed === true ? "offline" : status) as AgentUpdateMessage["status"],
		current_load: finite(agent.current_load, 0),
		timestamp
	};
}

export function pipelineProgressMessage(payload: unknown, timestamp: string): PipelineProgressMessage | null {
	const run = record(record(payload)?.run);
	const runId = text(run?.run_id);
	const pipelineId = text(run?.pipeline_id);
	const status = text(run?.status);
	if (!run || !runId || !pipelineId || !status) return null;
	const completed = Array.isArray(run.completed_stages) ? run.completed_stages.filter((i): i is number => Number.isInteger(i)) : [];
	return {
		type: "pipeline_progress",
		pipeline_id: pipelineId,
		run_id: runId,
		status: status as PipelineProgressMessage["status"],
		current_stage: Number.isInteger(run.current_stage) ? (run.current_stage as number) : null,
		completed_stages: completed,
		progress: finite(run.progress, 0),
		timestamp
	};
}

/** Accepts the wire shape with or without `type`/`timestamp`; `details` defaults from `error`. */
export function errorMessage(payload: unknown, timestamp: string): ErrorMessage | null {
	const event = record(payload);
	const error = text(event?.error);
	if (!event || !error) return null;
	const details = record(event.details);
	const message: ErrorMessage = {
		type: "error",
		error,
		details: {
			code: text(details?.code) ?? "INTERNAL_ERROR",
			message: text(details?.message) ?? error
		},
		timestamp: text(event.timestamp) ?? timestamp
	};
	for (const key of ["task_id", "pipeline_id", "run_id", "agent_id"] as const) {
		const id = text(event[key]);
		if (id) message[key] = id;
	}
	return message;
}

const CONVERTERS: Record<RelayedEvent, (payload: unknown, timestamp: string) => ClusterMessage | null> = {
	[EVENTS.taskUpdated]: taskUpdateMessage,
	[EVENTS.agentUpdated]: agentUpdateMessage,
	[EVENTS.pipelineProgress]: pipelineProgressMessage,
	[EVENTS.error]: errorMessage
};

/**
 * `timestamp` is when this gateway relays the change: entities' own `updated_at` is not bumped by
 * every change (progress) and comes from whichever node's clock wrote it.
 */
export function toWireMessage(event: RelayedEvent, payload: unknown, now: Date = new Date()): ClusterMessage | null {
	return CONVERTERS[event](payload, now.toISOString());
}
