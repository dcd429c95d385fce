/**
 * Entity ids. A client's `Idempotency-Key` becomes an id scoped to its caller, so the same key
 * gives the same entity on every node; ids the engine derives for its own stage tasks live in a
 * namespace of their own (`task-stage-…`), which no client key can reach.
 */
import { createHash, randomUUID } from "node:crypto";

const digest = (parts: string[]) => createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 32);

export function newId(prefix: string): string {
	return `${prefix}-${randomUUID()}`;
}

/** `scope` says whose key it is (the caller's subject, and the parent entity where there is one). */
export function idempotentId(prefix: string, scope: string[], key: string): string {
	return `${prefix}-${digest([...scope, key])}`;
}

/** The task that runs stage `stage` of generation `attempt` of a run: the same on every try, so making it twice finds the first. */
export function stageTaskId(runId: string, stage: number, attempt: number): string {
	return `task-stage-${digest([runId, String(stage), String(attempt)])}`;
}
