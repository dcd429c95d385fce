/**
 * Operator commands for `npm run repl` (moleculer-repl custom commands) and the token rules shared
 * with `npm run token`. Each command is a function of a broker-like caller and its arguments that
 * returns the text to print, so it can be tested without a terminal; `replCommands()` wraps them
 * for moleculer-repl (`replOptions.customCommands`).
 *
 * Commands call the same actions the REST routes do (src/http/routes.ts), as trusted internal
 * calls: no token, no gateway, no audit entry.
 */
import type { ReplOptions, ServiceBroker } from "moleculer";
import { appConfig } from "./app-config";
import type { JwtSettings } from "./config";
import type { MintOptions } from "./tokens";
import { mintToken } from "./tokens";
import { USER_ROLES, type Agent, type PipelineRun, type Role, type Task } from "../types";

// ---------- tables ----------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export type Cell = string | number | boolean | null | undefined;

const MAX_CELL = 48;

function cellText(value: Cell): string {
	if (value === null || value === undefined || value === "") return "-";
	const text = String(value).replace(/\s+/g, " ");
	return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}

/**
 * Plain-text table: upper-case header, a dashed rule, one line per row, columns padded to their
 * widest cell and separated by two spaces; empty cells print as `-`. No colours, no borders, so it
 * reads the same in a terminal, a pipe or a log.
 */
export function formatTable(headers: string[], rows: Cell[][]): string {
	const head = headers.map(h => h.toUpperCase());
	const body = rows.map(row => headers.map((_, i) => cellText(row[i])));
	const widths = head.map((h, i) => Math.max(h.length, ...body.map(r => r[i].length)));
	const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
	return [line(head), line(widths.map(w => "-".repeat(w))), ...body.map(line)].join("\n");
}

const percent = (fraction: number | null | undefined) =>
	typeof fraction === "number" && Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : undefined;

const load = (value: number | null | undefined) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : undefined);

/** ISO timestamps without milliseconds. */
const time = (iso: string | null | undefined) => (iso ? iso.replace(/\.\d+Z$/, "Z") : undefined);

export function agentsTable(agents: Agent[]): string {
	if (!agents.length) return "No agents.";
	return formatTable(
		["id", "name", "type", "status", "load", "running", "node"],
		agents.map(a => [a.id, a.name, a.type, a.status, load(a.current_load), a.running_tasks, a.node_id])
	);
}

export function tasksTable(tasks: Task[], total?: number): string {
	if (!tasks.length) return "No tasks.";
	const table = formatTable(
		["task_id", "type", "status", "priority", "progress", "agent", "pipeline", "stage", "attempt", "updated"],
		tasks.map(t => [t.task_id, t.type, t.status, t.priority, percent(t.progress), t.assigned_agent, t.pipeline_id, t.stage, t.attempt, time(t.updated_at)])
	);
	return total !== undefined && total > tasks.length ? `${table}\n(${tasks.length} of ${total} tasks)` : table;
}

/** A run as `pipelines.get` / `pipelines.getRun` return it (summaries may lack `stages`). */
export type RunRow = Partial<PipelineRun> & { run_id: string };

export function runsTable(runs: RunRow[]): string {
	if (!runs.length) return "No runs.";
	return formatTable(
		["run_id", "pipeline_id", "status", "progress", "stage", "completed", "created"],
		runs.map(r => [
			r.run_id,
			r.pipeline_id,
			r.status,
			percent(r.progress),
			r.current_stage,
			r.completed_stages ? (r.stages ? `${r.completed_stages.length}/${r.stages.length}` : r.completed_stages.length) : undefined,
			time(r.created_at)
		])
	);
}

// ---------- errors ----------

/** The part of a broker the commands use: easy to fake in tests. */
export interface Caller {
	call(action: string, params?: object): Promise<unknown>;
}

interface ErrorLike {
	name?: string;
	message?: string;
	code?: number | string;
	type?: string;
	data?: unknown;
}

/** One readable line for a failed call: a missing action says which service to start. */
export function describeError(err: unknown, action: string): string {
	const e = (err ?? {}) as ErrorLike;
	if (e.type === "SERVICE_NOT_FOUND" || e.type === "SERVICE_NOT_AVAILABLE" || e.name === "ServiceNotFoundError") {
		const missing = isObject(e.data) && typeof e.data.action === "string" ? e.data.action : action;
		const service = missing.split(".")[0];
		return `The action '${missing}' is not available: no node of this cluster runs it (is the '${service}' service started, and does it have this action?)`;
	}
	if (e.name === "ValidationError" || e.type === "VALIDATION_ERROR") {
		const fields = Array.isArray(e.data)
			? e.data.map((d: { field?: string; message?: string }) => d.message ?? d.field).filter(Boolean).join("; ")
			: "";
		return `Invalid parameters for '${action}': ${fields || e.message}`;
	}
	const code = [typeof e.code === "number" ? e.code : undefined, e.type].filter(Boolean).join(" ");
	return `${action} failed${code ? ` (${code})` : ""}: ${e.message ?? String(err)}`;
}

/** A usage mistake: the message is for the person typing. */
export class UsageError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "UsageError";
	}
}

// ---------- commands ----------

/** `{ key: [...] }` or a bare array → the array. */
function listOf<T>(result: unknown, key: string): T[] {
	if (Array.isArray(result)) return result as T[];
	if (isObject(result) && Array.isArray(result[key])) return result[key] as T[];
	return [];
}

export async function agentsCommand(broker: Caller, status?: string): Promise<string> {
	const result = await broker.call("agents.list", status ? { status } : {});
	return agentsTable(listOf<Agent>(result, "agents"));
}

export async function tasksCommand(broker: Caller, status?: string): Promise<string> {
	const result = await broker.call("tasks.list", status ? { status } : {});
	const total = isObject(result) && typeof result.total === "number" ? result.total : undefined;
	return tasksTable(listOf<Task>(result, "tasks"), total);
}

export async function drainCommand(broker: Caller, agentId: string): Promise<string> {
	const agent = (await broker.call("agents.drain", { id: agentId })) as Agent;
	return agentsTable([agent]);
}

interface PipelineSummary {
	pipeline_id?: string;
	id?: string;
	name?: string;
	runs?: RunRow[];
}

const pipelineIdOf = (p: PipelineSummary) => p.pipeline_id ?? p.id;

async function runsOfPipeline(broker: Caller, pipelineId: string): Promise<RunRow[]> {
	const pipeline = await broker.call("pipelines.get", { id: pipelineId });
	const runs = isObject(pipeline) && Array.isArray(pipeline.runs) ? (pipeline.runs as RunRow[]) : [];
	return runs.map(r => ({ pipeline_id: pipelineId, ...r }));
}

/** Every run of every pipeline (`pipelines.list`, then `pipelines.get` where the list has no runs). */
async function allRuns(broker: Caller): Promise<RunRow[]> {
	const pipelines = listOf<PipelineSummary>(await broker.call("pipelines.list", {}), "pipelines");
	const runs: RunRow[] = [];
	for (const p of pipelines) {
		const id = pipelineIdOf(p);
		if (!id) continue;
		if (Array.isArray(p.runs)) runs.push(...p.runs.map(r => ({ pipeline_id: id, ...r })));
		else runs.push(...(await runsOfPipeline(broker, id)));
	}
	return runs;
}

export const RECENT_RUNS = 20;

const newestFirst = (a: RunRow, b: RunRow) => (b.created_at ?? "").localeCompare(a.created_at ?? "");

/** `runs <pipeline_id>`: that pipeline's runs; `runs`: the most recent runs of all pipelines. */
export async function runsCommand(broker: Caller, pipelineId?: string): Promise<string> {
	if (pipelineId) return runsTable((await runsOfPipeline(broker, pipelineId)).sort(newestFirst));
	const runs = (await allRuns(broker)).sort(newestFirst);
	const shown = runs.slice(0, RECENT_RUNS);
	const note = runs.length > shown.length ? `\n(${shown.length} most recent of ${runs.length} runs; \`runs <pipeline_id>\` lists one pipeline's)` : "";
	return runsTable(shown) + note;
}

/** The pipeline a run belongs to, found by scanning the pipelines' runs. */
export async function findRunPipeline(broker: Caller, runId: string): Promise<string> {
	const run = (await allRuns(broker)).find(r => r.run_id === runId);
	if (!run?.pipeline_id) throw new UsageError(`No run '${runId}' found in any pipeline (try: <pipeline_id> <run_id>)`);
	return run.pipeline_id;
}

/**
 * `cancel <run_id>` / `cancel <pipeline_id> <run_id>` (and the same for `retry`): with one
 * argument the run's pipeline is looked up first.
 */
export async function runActionCommand(broker: Caller, verb: "cancel" | "retry", first: string, second?: string): Promise<string> {
	const [pipelineId, runId] = second ? [first, second] : [await findRunPipeline(broker, first), first];
	const action = verb === "cancel" ? "pipelines.cancelRun" : "pipelines.retryRun";
	const result = await broker.call(action, { id: pipelineId, run_id: runId });
	if (isObject(result) && typeof result.run_id === "string") {
		// A short answer ({ run_id, status }) is completed from the run itself, when it can be read.
		const run = result.progress === undefined
			? await broker.call("pipelines.getRun", { id: pipelineId, run_id: runId }).catch(() => result)
			: result;
		return runsTable([{ pipeline_id: pipelineId, ...(run as RunRow) }]);
	}
	return `${verb === "cancel" ? "Cancelled" : "Retried"} run ${runId} of pipeline ${pipelineId}`;
}

// ---------- tokens ----------

export const TOKEN_ROLES: readonly Role[] = [...USER_ROLES, "agent"];
export const DEFAULT_TOKEN_TTL_SEC = 3600;

export interface TokenArgs {
	/** Comma-separated, or several values. */
	roles?: string | string[];
	sub?: string;
	agentId?: string;
	/** The agent's `registered_at`: an agent token is honoured only for the registration it names. */
	registeredAt?: string;
	/** Seconds, as typed. */
	expiresIn?: string | number;
}

/** Validated mint options from what a person typed (`npm run token`, REPL `token`). */
export function tokenOptions(args: TokenArgs): MintOptions {
	const raw = (Array.isArray(args.roles) ? args.roles : [args.roles ?? ""]).flatMap(r => r.split(","));
	const roles = [...new Set(raw.map(r => r.trim()).filter(Boolean))];
	if (!roles.length) throw new UsageError(`roles are required: one or more of ${TOKEN_ROLES.join(", ")} (comma-separated)`);
	const unknown = roles.filter(r => !TOKEN_ROLES.includes(r as Role));
	if (unknown.length) throw new UsageError(`unknown role ${unknown.map(r => `'${r}'`).join(", ")}: expected ${TOKEN_ROLES.join(", ")}`);
	const agentId = args.agentId?.trim() || undefined;
	if (roles.includes("agent")) {
		if (roles.length > 1) throw new UsageError("the agent role cannot be combined with other roles");
		if (!agentId) throw new UsageError("an agent token needs an agent id (--agent-id)");
	} else if (agentId) throw new UsageError("--agent-id is only for the agent role");
	const rat = args.registeredAt?.trim() || undefined;
	if (rat && !agentId) throw new UsageError("--registered-at is only for the agent role");

	const ttlText = String(args.expiresIn ?? DEFAULT_TOKEN_TTL_SEC).trim();
	const expiresInSec = Number(ttlText);
	if (!/^\d+$/.test(ttlText) || !Number.isSafeInteger(expiresInSec) || expiresInSec <= 0)
		throw new UsageError(`expires-in must be a positive number of seconds, got '${ttlText}'`);

	const sub = args.sub?.trim() || (agentId ? `agent:${agentId}` : undefined);
	if (!sub) throw new UsageError("a subject is required (--sub NAME)");
	return { sub, roles: roles as Role[], expiresInSec, ...(agentId ? { agent_id: agentId } : {}), ...(rat ? { rat } : {}) };
}

export function tokenCommand(secret: string, args: TokenArgs, settings?: JwtSettings): string {
	const options = tokenOptions(args);
	const token = mintToken(secret, options, settings);
	return `${token}\n(sub ${options.sub}, roles ${options.roles.join(",")}, expires in ${options.expiresInSec} s)`;
}

// ---------- moleculer-repl wiring ----------

type ReplCommand = NonNullable<ReplOptions["customCommands"]>[number];

/** What moleculer-repl 0.8 passes a custom command: named arguments, flags under `options`. */
interface ReplArgs {
	options?: Record<string, unknown>;
	[name: string]: unknown;
}

const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);

function command(
	def: Omit<ReplCommand, "action">,
	run: (broker: ServiceBroker, args: ReplArgs) => Promise<string> | string,
	action: string
): ReplCommand {
	return {
		...def,
		// Never throws: a failed call prints one line and the prompt comes back.
		async action(broker: ServiceBroker, args: unknown) {
			let text: string;
			try {
				text = await run(broker, (args ?? {}) as ReplArgs);
			} catch (err) {
				text = err instanceof UsageError ? `Usage: ${err.message}` : describeError(err, action);
			}
			process.stdout.write(`${text}\n`);
		}
	};
}

/** The custom commands for `replOptions.customCommands`. */
export function replCommands(): ReplCommand[] {
	return [
		command(
			{ command: "agents [status]", description: "List agents (id, name, type, status, load, running, node), optionally of one status" },
			(broker, args) => agentsCommand(broker, str(args.status)),
			"agents.list"
		),
		command(
			{ command: "tasks [status]", description: "List tasks, optionally of one status (pending, running, retrying, ...)" },
			(broker, args) => tasksCommand(broker, str(args.status)),
			"tasks.list"
		),
		command(
			{ command: "runs [pipeline_id]", description: `List the runs of one pipeline, or the ${RECENT_RUNS} most recent runs` },
			(broker, args) => runsCommand(broker, str(args.pipeline_id)),
			"pipelines.get"
		),
		command(
			{ command: "drain <agent_id>", description: "Drain an agent: it takes no new tasks" },
			(broker, args) => drainCommand(broker, String(args.agent_id)),
			"agents.drain"
		),
		command(
			{ command: "cancel <id> [run_id]", description: "Cancel a pipeline run: cancel <run_id> or cancel <pipeline_id> <run_id>" },
			(broker, args) => runActionCommand(broker, "cancel", String(args.id), str(args.run_id)),
			"pipelines.cancelRun"
		),
		command(
			{ command: "retry <id> [run_id]", description: "Re-run the failed stages of a run: retry <run_id> or retry <pipeline_id> <run_id>" },
			(broker, args) => runActionCommand(broker, "retry", String(args.id), str(args.run_id)),
			"pipelines.retryRun"
		),
		command(
			{
				command: "token <roles> [sub]",
				description: "Mint a JWT (roles: comma list of viewer, operator, admin, agent) signed with JWT_SECRET",
				options: [
					{ option: "-e, --expires-in <seconds>", description: `Lifetime in seconds (default ${DEFAULT_TOKEN_TTL_SEC})` },
					{ option: "-a, --agent-id <id>", description: "Agent id (required for the agent role)" }
				]
			},
			async (broker, args) => {
				const agentId = str(args.options?.agentId);
				// An agent token names the registration it is for: the REPL looks it up.
				const registeredAt = agentId
					? await broker.call<{ registered_at?: string }, { id: string }>("agents.get", { id: agentId }).then(a => a.registered_at, () => undefined)
					: undefined;
				return tokenCommand(
					appConfig(broker).secrets.jwtSecret,
					{ roles: str(args.roles), sub: str(args.sub) ?? (agentId ? undefined : "repl"), agentId, registeredAt, expiresIn: str(args.options?.expiresIn) },
					appConfig(broker).jwt
				);
			},
			"token"
		)
	];
}
