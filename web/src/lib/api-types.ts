/**
 * REST answers the panel reads that src/types.ts does not declare as one type. Entities
 * themselves (Task, Agent, Pipeline, AuditEntry...) are the server's own types.
 */
import type { RunSummary, RunView } from "../../../src/domain/pipelines/runs";
import type { PassOverReason, WaitReport } from "../../../src/domain/tasks/dispatch";
import type { Overview } from "../../../src/platform/metrics/overview";
import type { Agent, AuditEntry, NumberedMessage, Pipeline, Task } from "../../../src/types";

export type { RunSummary, RunView };

export interface Page {
	total: number;
	limit: number;
	offset: number;
}
export interface TaskPage extends Page {
	tasks: Task[];
}
export interface AgentPage extends Page {
	agents: Agent[];
}
export interface PipelinePage extends Page {
	pipelines: Pipeline[];
}
export interface AuditPage extends Page {
	entries: AuditEntry[];
}
export type PipelineWithRuns = Pipeline & { runs: RunSummary[] };

/** `GET /api/v1/overview`: the server's own answer type. */
export type { Overview };
export type WaitReason = PassOverReason;

/** `GET /api/v1/tasks/{id}/explain`. */
export type TaskExplanation = WaitReport;

export type BulkAction = "cancel" | "retry";
/** `POST /api/v1/tasks/bulk`. */
export interface BulkResult {
	matched: number;
	changed: number;
}

/** Every event carries `seq`, a counter per gateway node. */
export type LiveMessage = NumberedMessage;
