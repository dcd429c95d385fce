/**
 * How an agent's status moves. The agents actor applies these to decide the next status;
 * `null` means "no change".
 */
import type { AgentHeartbeat, AgentStatus } from "../../types";

/** Statuses in which an agent is considered alive (and so watched for silence). */
export const LIVE_STATUSES: readonly AgentStatus[] = ["active", "busy", "unhealthy", "draining"];

/**
 * A heartbeat proves the agent lives. Draining was an operator's decision (`drained`): neither a
 * heartbeat nor a spell offline undoes it.
 */
export function statusAfterHeartbeat(current: AgentStatus, reported: AgentHeartbeat["status"], drained = false): AgentStatus {
	if (drained || current === "draining" || reported === "draining") return "draining";
	if (reported === "busy") return "busy";
	return "active";
}

/** No word from the agent for `timeoutMs` since it was last heard (ms). */
export function isSilent(lastHeardAt: number, now: number, timeoutMs: number): boolean {
	return now - lastHeardAt > timeoutMs;
}

export function statusAfterSilence(current: AgentStatus): AgentStatus | null {
	return current === "offline" ? null : "offline";
}

/** Outcome of polling an HTTP agent's `endpoints.health`. */
export function statusAfterHealthCheck(current: AgentStatus, healthy: boolean, drained = false): AgentStatus | null {
	if (healthy) return current === "unhealthy" || current === "offline" ? (drained ? "draining" : "active") : null;
	return current === "active" || current === "busy" ? "unhealthy" : null;
}

/** Re-registering the same name: the agent is back, unless an operator is draining it. */
export function statusAfterRegistration(current: AgentStatus | undefined, drained = false): AgentStatus {
	return drained || current === "draining" ? "draining" : "active";
}

/** Can the dispatcher hand this agent new work? */
export function acceptsWork(status: AgentStatus): boolean {
	return status === "active";
}
