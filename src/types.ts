/**
 * Wire types: REST payloads, stored entities and cluster events.
 * Shared by services, tests and clients. Field names are snake_case as in the spec.
 */

// ---------- auth ----------
export const USER_ROLES = ["viewer", "operator", "admin"] as const;
export type UserRole = (typeof USER_ROLES)[number];
/** `agent`: an agent's own token; `system`: a trusted node's own calls (never minted for people). */
export type Role = UserRole | "agent" | "system";

/** Who is calling: the verified token's claims, kept in `ctx.meta.user`. */
export interface Principal {
	sub: string;
	roles: Role[];
	/** Set on agent tokens and task callback tokens. */
	agent_id?: string;
	/** Set on task callback tokens: the one task they may report on. */
	task_id?: string;
	/** Set on task callback tokens: the attempt they were handed out for. */
	attempt?: number;
	/** Set on agent and callback tokens: the registration they belong to (the agent's `registered_at`). */
	rat?: string;
	/** Authenticated by the API key rather than a token. */
	via_api_key?: boolean;
}

export interface TokenRequest {
	api_key: string;
	sub: string;
	roles?: UserRole[];
	expires_in?: number;
}

export interface TokenResponse {
	token: string;
	expires_in: number;
}

// ---------- errors ----------
export type ErrorCode =
	| "BAD_REQUEST"
	| "UNAUTHORIZED"
	| "FORBIDDEN"
	| "NOT_FOUND"
	| "CONFLICT"
	| "PAYLOAD_TOO_LARGE"
	| "VALIDATION_ERROR"
	| "RATE_LIMITED"
	| "QUOTA_EXCEEDED"
	| "NOT_READY"
	| "INTERNAL_ERROR";

export interface FieldError {
	field: string;
	message: string;
	type?: string;
}

export interface ErrorBody {
	error: { code: ErrorCode; message: string; details?: unknown };
}

// ---------- agents ----------
export const AGENT_STATUSES = ["active", "busy", "unhealthy", "offline", "draining"] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];
export const AGENT_TYPES = ["worker", "orchestrator", "validator"] as const;
export type AgentType = (typeof AGENT_TYPES)[number];

export interface AgentEndpoints {
	task?: string;
	status?: string;
	health?: string;
}

export interface AgentResources {
	cpu?: number;
	memory?: string;
	gpu?: boolean;
}

export interface AgentRegistration {
	name: string;
	type: AgentType;
	capabilities: string[];
	endpoints?: AgentEndpoints;
	resources?: AgentResources;
	/** Moleculer agents: the node that runs them (set by the agent mixin). */
	node_id?: string;
	/** Moleculer agents: the service that takes their tasks (set by the agent mixin). */
	service?: string;
}

export interface Agent {
	id: string;
	name: string;
	type: AgentType;
	status: AgentStatus;
	capabilities: string[];
	endpoints: AgentEndpoints;
	resources: AgentResources;
	node_id: string | null;
	service: string | null;
	current_load: number;
	/** Tasks running on it, cluster-wide: the sum of `running_by_node`. */
	running_tasks: number;
	/** Running tasks as counted by each dispatching core node. */
	running_by_node?: Record<string, number>;
	last_heartbeat: string;
	registered_at: string;
	updated_at: string;
}

export interface RegisteredAgent extends Agent {
	/** The agent's own token (`roles: ["agent"]`, `agent_id` claim), valid AGENT_TOKEN_TTL_SEC; heartbeats renew it. */
	token: string;
	/** Key the agent checks its deliveries' signatures with (Moleculer agents: `execute`'s `signature`). */
	delivery_key: string;
}

/** `POST /agents/{id}/heartbeat`'s answer: `token` is the agent's token, renewed. */
export interface HeartbeatAnswer {
	id: string;
	status: AgentStatus;
	last_heartbeat: string;
	token: string;
}

export interface AgentHeartbeat {
	status?: "active" | "busy" | "draining";
	current_load?: number;
}

export interface AgentListQuery {
	type?: AgentType;
	status?: AgentStatus;
	capability?: string;
	limit?: number;
	offset?: number;
}

export interface AgentList {
	agents: Agent[];
	total: number;
	limit: number;
	offset: number;
}

// ---------- tasks ----------
export const TASK_STATUSES = ["pending", "running", "completed", "failed", "retrying", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
import type { StageType } from "./stage-contract";
export { STAGE_TYPES, type StageType } from "./stage-contract";
export const PRIORITIES = ["high", "medium", "low"] as const;
export type Priority = (typeof PRIORITIES)[number];
export type LogLevelName = "debug" | "info" | "warn" | "error";

export interface TaskLogEntry {
	timestamp: string;
	level: LogLevelName;
	message: string;
}

export interface TaskSubmission {
	pipeline_id?: string;
	stage?: number;
	type: string;
	payload?: Record<string, unknown>;
	priority?: Priority;
	/** Seconds per attempt. */
	timeout?: number;
	/** Retries after the first attempt. */
	retry_count?: number;
	required_capabilities?: string[];
}

export interface Task {
	task_id: string;
	/** The token subject that submitted it (a stage task: the run's). */
	created_by: string | null;
	pipeline_id: string | null;
	run_id: string | null;
	stage: number | null;
	type: string;
	payload: Record<string, unknown>;
	priority: Priority;
	timeout: number;
	retry_count: number;
	required_capabilities: string[];
	status: TaskStatus;
	progress: number;
	assigned_agent: string | null;
	/** Attempts started so far (1 = first attempt). */
	attempt: number;
	result: unknown;
	error: string | null;
	logs: TaskLogEntry[];
	idempotency_key: string | null;
	created_at: string;
	started_at: string | null;
	updated_at: string;
	finished_at: string | null;
	/** When a `retrying` task becomes eligible again. */
	next_attempt_at: string | null;
}

/** What an HTTP agent receives at `endpoints.task`. */
export interface TaskDelivery {
	task_id: string;
	type: string;
	payload: Record<string, unknown>;
	timeout: number;
	attempt: number;
	callback_token: string;
	callbacks: { progress: string; complete: string; fail: string };
}

// ---------- pipelines ----------
export interface StageDefinition {
	name: string;
	type: StageType;
	required?: boolean;
	timeout?: number;
	retry_count?: number;
	required_capabilities?: string[];
	parameters?: Record<string, unknown>;
}

export interface StageDependency {
	from: number;
	to: number;
}

/** Who besides the creator and admins may act: subjects, or `role:<name>`. */
export interface PipelinePermissions {
	/** May execute the pipeline (without the list: every operator). */
	execute?: string[];
	/** May cancel and retry its runs and their stage tasks, and remove it (besides the creator and admins). */
	manage?: string[];
}

export interface PipelineDefinition {
	name: string;
	description?: string;
	stages: StageDefinition[];
	dependencies?: StageDependency[];
	permissions?: PipelinePermissions;
}

export interface Pipeline extends PipelineDefinition {
	pipeline_id: string;
	/** The token subject that created it. */
	created_by: string | null;
	dependencies: StageDependency[];
	created_at: string;
	updated_at: string;
}

export interface PipelineExecution {
	input_data?: Record<string, unknown>;
	parameters?: Record<string, unknown>;
	notification?: { webhook?: string; email?: string };
}

export const RUN_STATUSES = ["running", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const STAGE_STATUSES = ["waiting", "running", "completed", "failed", "skipped", "cancelled"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

export interface RunStage {
	index: number;
	name: string;
	status: StageStatus;
	task_id: string | null;
	result: unknown;
	error?: string | null;
}

export interface PipelineRun {
	run_id: string;
	/** The token subject that executed it. */
	created_by: string | null;
	pipeline_id: string;
	status: RunStatus;
	current_stage: number | null;
	completed_stages: number[];
	progress: number;
	stages: RunStage[];
	input_data: Record<string, unknown>;
	parameters: Record<string, unknown>;
	notification: { webhook?: string; email?: string } | null;
	created_at: string;
	updated_at: string;
	finished_at: string | null;
}

// ---------- events ----------
/** Moleculer event names carrying the entities above across the cluster. */
export const EVENTS = {
	agentUpdated: "agent.updated",
	/** Between core nodes: the heartbeats each took since its last batch (liveness, not news). */
	agentHeard: "agent.heard",
	taskUpdated: "task.updated",
	pipelineProgress: "pipeline.progress",
	error: "mcp.error",
	audit: "audit.entry",
	/** Finished tasks the retention removed, counted by status (`TasksRemovedEvent`): the figures by status drop, the counters stay. */
	tasksRemoved: "tasks.removed"
} as const;

export interface TasksRemovedEvent {
	removed: Partial<Record<TaskStatus, number>>;
}

export interface TaskUpdateMessage {
	type: "task_update";
	task_id: string;
	pipeline_id: string | null;
	run_id: string | null;
	assigned_agent: string | null;
	status: TaskStatus;
	progress: number;
	timestamp: string;
}

export interface AgentUpdateMessage {
	type: "agent_update";
	agent_id: string;
	status: AgentStatus;
	current_load: number;
	timestamp: string;
}

export interface PipelineProgressMessage {
	type: "pipeline_progress";
	pipeline_id: string;
	run_id: string;
	status: RunStatus;
	current_stage: number | null;
	completed_stages: number[];
	progress: number;
	timestamp: string;
}

export interface ErrorMessage {
	type: "error";
	task_id?: string;
	pipeline_id?: string;
	run_id?: string;
	agent_id?: string;
	error: string;
	details: { code: string; message: string };
	timestamp: string;
}

export type ClusterMessage = TaskUpdateMessage | AgentUpdateMessage | PipelineProgressMessage | ErrorMessage;

/** What a client receives: the message, numbered by the gateway node that sent it (1, 2, 3 …), so a gap shows a loss. */
export type NumberedMessage = ClusterMessage & { seq: number };

/** `agent.updated` event payload: the agent after the change. */
/** A core node's heartbeats since its last batch: [agent id, heard at (ms), reported load?]. */
export interface AgentHeardEvent {
	beats: Array<[id: string, at: number, load?: number]>;
}

export interface AgentUpdatedEvent {
	agent: Agent;
	/** Status before the change, when it changed. */
	previous_status?: AgentStatus;
	/** Set when the agent was deregistered. */
	removed?: boolean;
}

// ---------- audit ----------
export interface AuditEntry {
	id: string;
	timestamp: string;
	actor: string;
	roles: Role[];
	action: string;
	method: string;
	path: string;
	target: string | null;
	result: "success" | "failure";
	status: number;
	request_id: string | null;
	ip: string | null;
}
