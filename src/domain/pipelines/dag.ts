/**
 * Pipeline graphs and run advancing, on plain data. The pipelines service validates definitions here
 * and, after every stage outcome, asks `advance` what to start next and whether the run is over.
 *
 * Stages are addressed by index; a run's `stages` array is in index order (`stages[i].index === i`).
 * Outcome rules:
 * - A dependency is satisfied when it completed, or when it is an optional (`required: false`) stage
 *   that ended failed, skipped or cancelled: an optional stage's failure must not hold up the rest.
 * - A waiting stage with a required dependency that ended failed, skipped or cancelled can never run:
 *   it is marked skipped (and, if itself required, that in turn blocks its dependents).
 * - A run is over when no stage is waiting or running. Independent branches keep going after a
 *   required failure, so their results survive for a retry. It then fails when a required stage
 *   failed, was skipped or was cancelled, and completes otherwise.
 */
import { STAGE_TYPES } from "../../types";
import type { FieldError, PipelineDefinition, PipelinePermissions, RunStage, RunStatus, StageDefinition, StageDependency, StageStatus, StageType } from "../../types";

export const MAX_STAGES = 100;

/** A definition whose dependencies are explicit, as `validatePipeline` returns and the store keeps. */
export type NormalizedPipeline = PipelineDefinition & { dependencies: StageDependency[] };

/**
 * What the graph functions need. `dependencies` left undefined means "in order", the same as at
 * creation, so a definition that skipped normalization still runs as its author meant.
 */
export interface PipelineGraph {
	stages: StageDefinition[];
	dependencies?: StageDependency[];
}

export type PipelineValidation = { ok: true; value: NormalizedPipeline } | { ok: false; errors: FieldError[] };

/** One entry of a task payload's dependency results, keyed by the dependency stage's name. */
export interface DependencyResult {
	index: number;
	status: StageStatus;
	/** The stage's result when it completed; null otherwise (a failed or skipped optional stage). */
	result: unknown;
}

export interface Advance {
	stages: RunStage[];
	/** Waiting stages to start now, ascending. The caller creates their tasks and marks them running. */
	ready: number[];
	/** The run's final status once no stage is waiting or running; null while it goes on. */
	runStatus: RunStatus | null;
}

// ---------- validation ----------

const isObject = (value: unknown): value is Record<string, unknown> =>
	typeof value === "object" && value !== null && !Array.isArray(value);

// Clients serialising optional fields often send null for "not set"; treat it as absent.
const isAbsent = (value: unknown): value is undefined | null => value === undefined || value === null;

const isNonEmptyString = (value: unknown): value is string => typeof value === "string" && value.trim() !== "";

const isStageType = (value: unknown): value is StageType => (STAGE_TYPES as readonly unknown[]).includes(value);

/** "No dependencies given" means each stage waits for the one before it. */
export function sequentialDependencies(stageCount: number): StageDependency[] {
	const dependencies: StageDependency[] = [];
	for (let to = 1; to < stageCount; to++) dependencies.push({ from: to - 1, to });
	return dependencies;
}

function validateStage(raw: unknown, at: string, errors: FieldError[]): StageDefinition | null {
	if (!isObject(raw)) {
		errors.push({ field: at, message: "must be an object", type: "object" });
		return null;
	}
	const before = errors.length;
	if (!isNonEmptyString(raw.name))
		errors.push({ field: `${at}.name`, message: "is required and must be a non-empty string", type: "required" });
	if (!isStageType(raw.type))
		errors.push({ field: `${at}.type`, message: `must be one of: ${STAGE_TYPES.join(", ")}`, type: "stringEnum" });
	if (!isAbsent(raw.required) && typeof raw.required !== "boolean")
		errors.push({ field: `${at}.required`, message: "must be a boolean", type: "boolean" });
	if (!isAbsent(raw.timeout) && !(Number.isInteger(raw.timeout) && (raw.timeout as number) > 0))
		errors.push({ field: `${at}.timeout`, message: "must be a positive integer (seconds)", type: "numberPositive" });
	if (!isAbsent(raw.retry_count) && !(Number.isInteger(raw.retry_count) && (raw.retry_count as number) >= 0))
		errors.push({ field: `${at}.retry_count`, message: "must be an integer >= 0", type: "numberMin" });
	if (
		!isAbsent(raw.required_capabilities) &&
		!(Array.isArray(raw.required_capabilities) && raw.required_capabilities.every(c => typeof c === "string"))
	)
		errors.push({ field: `${at}.required_capabilities`, message: "must be an array of strings", type: "array" });
	if (!isAbsent(raw.parameters) && !isObject(raw.parameters))
		errors.push({ field: `${at}.parameters`, message: "must be an object", type: "object" });
	if (errors.length > before) return null;

	// Rebuilt field by field so unknown keys never reach the store.
	const stage: StageDefinition = {
		name: raw.name as string,
		type: raw.type as StageType,
		required: isAbsent(raw.required) ? true : (raw.required as boolean)
	};
	if (!isAbsent(raw.timeout)) stage.timeout = raw.timeout as number;
	if (!isAbsent(raw.retry_count)) stage.retry_count = raw.retry_count as number;
	if (!isAbsent(raw.required_capabilities)) stage.required_capabilities = [...(raw.required_capabilities as string[])];
	if (!isAbsent(raw.parameters)) stage.parameters = raw.parameters as Record<string, unknown>;
	return stage;
}

/**
 * Checks edges one by one; `stageCount` is null when the stages themselves were unusable, in which
 * case index ranges cannot be judged. Returns the distinct edges in first-seen order.
 */
function validateDependencies(raw: unknown, stageCount: number | null, errors: FieldError[]): StageDependency[] {
	if (!Array.isArray(raw)) {
		errors.push({ field: "dependencies", message: "must be an array of {from, to}", type: "array" });
		return [];
	}
	const seen = new Set<string>();
	const edges: StageDependency[] = [];
	raw.forEach((edge: unknown, i) => {
		const at = `dependencies[${i}]`;
		if (!isObject(edge)) {
			errors.push({ field: at, message: "must be an object {from, to}", type: "object" });
			return;
		}
		let usable = true;
		for (const end of ["from", "to"] as const) {
			const value = edge[end];
			if (!Number.isInteger(value)) {
				errors.push({ field: `${at}.${end}`, message: "must be a stage index (integer)", type: "numberInteger" });
				usable = false;
			} else if (stageCount !== null && ((value as number) < 0 || (value as number) >= stageCount)) {
				errors.push({
					field: `${at}.${end}`,
					message: `unknown stage index ${value} (stages are 0..${stageCount - 1})`,
					type: "unknownStage"
				});
				usable = false;
			}
		}
		if (!usable) return;
		const from = edge.from as number;
		const to = edge.to as number;
		if (from === to) {
			errors.push({ field: at, message: `stage ${from} cannot depend on itself`, type: "selfLoop" });
			return;
		}
		const key = `${from}>${to}`;
		if (seen.has(key)) return;
		seen.add(key);
		edges.push({ from, to });
	});
	return edges;
}

/**
 * One cycle among the edges, as the stage indices along it with the first repeated at the end
 * (e.g. [1, 2, 1]), or null when the graph is acyclic. Depth-first from the lowest index, so the
 * answer is the same for the same definition.
 */
export function findCycle(stageCount: number, dependencies: StageDependency[]): number[] | null {
	const next = adjacency(stageCount, dependencies, "dependents");
	const UNSEEN = 0, ON_PATH = 1, DONE = 2;
	const state = new Array<number>(stageCount).fill(UNSEEN);
	const path: number[] = [];

	const visit = (node: number): number[] | null => {
		state[node] = ON_PATH;
		path.push(node);
		for (const successor of next[node]) {
			if (state[successor] === ON_PATH) return [...path.slice(path.indexOf(successor)), successor];
			if (state[successor] === UNSEEN) {
				const cycle = visit(successor);
				if (cycle) return cycle;
			}
		}
		path.pop();
		state[node] = DONE;
		return null;
	};

	for (let start = 0; start < stageCount; start++) {
		if (state[start] !== UNSEEN) continue;
		const cycle = visit(start);
		if (cycle) return cycle;
	}
	return null;
}

/**
 * Checks a pipeline definition as posted. On success the value is normalized: stages carry
 * `required` (default true), unknown keys are dropped, and `dependencies` is explicit and
 * deduplicated (absent → sequential, [] → all stages independent).
 */
export const MAX_GRANTS = 100;
const GRANTED_ROLES = ["viewer", "operator", "admin"];

/** `{ execute?, manage? }`: lists of subjects or `role:<viewer|operator|admin>`. */
function validatePermissions(raw: unknown, errors: FieldError[]): PipelinePermissions | undefined {
	if (!isObject(raw)) {
		errors.push({ field: "permissions", message: "must be an object with execute and/or manage lists", type: "object" });
		return undefined;
	}
	const permissions: PipelinePermissions = {};
	for (const key of Object.keys(raw)) {
		if (key !== "execute" && key !== "manage") {
			errors.push({ field: `permissions.${key}`, message: "is not a permission (execute, manage)", type: "objectStrict" });
			continue;
		}
		const list = raw[key];
		if (!Array.isArray(list) || list.length > MAX_GRANTS) {
			errors.push({ field: `permissions.${key}`, message: `must be a list of at most ${MAX_GRANTS} subjects or role:<name>`, type: "array" });
			continue;
		}
		list.forEach((grant, i) => {
			const role = typeof grant === "string" && grant.startsWith("role:") ? grant.slice(5) : null;
			if (!isNonEmptyString(grant) || grant.length > 200 || (role !== null && !GRANTED_ROLES.includes(role)))
				errors.push({ field: `permissions.${key}[${i}]`, message: `must be a subject or role:${GRANTED_ROLES.join("|")}`, type: "string" });
		});
		permissions[key] = [...new Set(list as string[])];
	}
	return permissions;
}

export function validatePipeline(def: unknown): PipelineValidation {
	if (!isObject(def)) return { ok: false, errors: [{ field: "body", message: "must be an object", type: "object" }] };
	const errors: FieldError[] = [];

	if (!isNonEmptyString(def.name))
		errors.push({ field: "name", message: "is required and must be a non-empty string", type: "required" });
	if (!isAbsent(def.description) && typeof def.description !== "string")
		errors.push({ field: "description", message: "must be a string", type: "string" });

	let stages: StageDefinition[] | null = null;
	if (!Array.isArray(def.stages)) {
		errors.push({ field: "stages", message: "is required and must be an array", type: "required" });
	} else if (def.stages.length === 0) {
		errors.push({ field: "stages", message: "must contain at least one stage", type: "arrayEmpty" });
	} else if (def.stages.length > MAX_STAGES) {
		errors.push({ field: "stages", message: `must contain at most ${MAX_STAGES} stages`, type: "arrayMax" });
	} else {
		const checked = def.stages.map((raw: unknown, i) => validateStage(raw, `stages[${i}]`, errors));
		if (checked.every((stage): stage is StageDefinition => stage !== null)) stages = checked;
		// Dependency results are keyed by stage name, so two stages of one name would collide.
		const firstIndexByName = new Map<string, number>();
		def.stages.forEach((raw: unknown, i) => {
			if (!isObject(raw) || !isNonEmptyString(raw.name)) return;
			const first = firstIndexByName.get(raw.name);
			if (first === undefined) firstIndexByName.set(raw.name, i);
			else errors.push({ field: `stages[${i}].name`, message: `duplicates the name of stage ${first}`, type: "unique" });
		});
	}

	// Ranges can be judged whenever stages is a usable-length array, even if a stage has a bad field.
	const stageCount = Array.isArray(def.stages) && def.stages.length > 0 && def.stages.length <= MAX_STAGES ? def.stages.length : null;
	const dependencies = isAbsent(def.dependencies)
		? sequentialDependencies(stageCount ?? 0)
		: validateDependencies(def.dependencies, stageCount, errors);

	// Only usable edges come back, so a cycle among them is worth reporting alongside other mistakes.
	if (stageCount !== null) {
		const cycle = findCycle(stageCount, dependencies);
		if (cycle) errors.push({ field: "dependencies", message: `cycle: ${cycle.join(" → ")}`, type: "cycle" });
	}

	const permissions = isAbsent(def.permissions) ? undefined : validatePermissions(def.permissions, errors);

	if (errors.length > 0 || stages === null) return { ok: false, errors };
	const value: NormalizedPipeline = { name: def.name as string, stages, dependencies };
	if (!isAbsent(def.description)) value.description = def.description as string;
	if (permissions) value.permissions = permissions;
	return { ok: true, value };
}

// ---------- graph queries ----------

function edgesOf(def: PipelineGraph): StageDependency[] {
	return def.dependencies ?? sequentialDependencies(def.stages.length);
}

/** Per stage, its dependencies (or dependents), ascending and without repeats. */
function adjacency(stageCount: number, dependencies: StageDependency[], direction: "dependencies" | "dependents"): number[][] {
	const sets = Array.from({ length: stageCount }, () => new Set<number>());
	for (const { from, to } of dependencies) {
		if (direction === "dependencies") sets[to]?.add(from);
		else sets[from]?.add(to);
	}
	return sets.map(set => [...set].sort((a, b) => a - b));
}

/** Stages that `index` waits for, ascending. */
export function dependenciesOf(def: PipelineGraph, index: number): number[] {
	return adjacency(def.stages.length, edgesOf(def), "dependencies")[index] ?? [];
}

/** Stages that wait for `index`, ascending. */
export function dependentsOf(def: PipelineGraph, index: number): number[] {
	return adjacency(def.stages.length, edgesOf(def), "dependents")[index] ?? [];
}

/** Stage indices with every stage after all of its dependencies. Assumes an acyclic graph. */
export function topologicalOrder(def: PipelineGraph): number[] {
	const dependents = adjacency(def.stages.length, edgesOf(def), "dependents");
	const pending = adjacency(def.stages.length, edgesOf(def), "dependencies").map(deps => deps.length);
	const order: number[] = [];
	const queue = pending.flatMap((count, index) => (count === 0 ? [index] : []));
	while (queue.length > 0) {
		const index = queue.shift() as number;
		order.push(index);
		for (const dependent of dependents[index]) if (--pending[dependent] === 0) queue.push(dependent);
	}
	return order;
}

// ---------- runs ----------

const isRequired = (stage: StageDefinition | undefined): boolean => stage?.required !== false;

const ENDED_BADLY: readonly StageStatus[] = ["failed", "skipped", "cancelled"];

/** Can a dependent go ahead, as far as this one dependency is concerned? */
function satisfies(def: PipelineGraph, stages: RunStage[], dependency: number): boolean {
	const status = stages[dependency]?.status;
	if (status === "completed") return true;
	return status !== undefined && ENDED_BADLY.includes(status) && !isRequired(def.stages[dependency]);
}

/** Will this dependency never let its dependents run? */
function blocks(def: PipelineGraph, stages: RunStage[], dependency: number): boolean {
	const status = stages[dependency]?.status;
	return status !== undefined && ENDED_BADLY.includes(status) && isRequired(def.stages[dependency]);
}

/** A fresh run's stages: all waiting. */
export function initialStages(def: PipelineGraph): RunStage[] {
	return def.stages.map((stage, index) => ({ index, name: stage.name, status: "waiting", task_id: null, result: null, error: null }));
}

/** Waiting stages whose dependencies are all satisfied, ascending. */
export function readyStages(def: PipelineGraph, stages: RunStage[]): number[] {
	const dependencies = adjacency(def.stages.length, edgesOf(def), "dependencies");
	return stages
		.filter(stage => stage.status === "waiting" && (dependencies[stage.index] ?? []).every(dep => satisfies(def, stages, dep)))
		.map(stage => stage.index);
}

/**
 * Skips what can no longer run, then says what to start and whether the run is over. Does not
 * change its input; stages it skips get an `error` saying which dependency stopped them.
 */
export function advance(def: PipelineGraph, stages: RunStage[]): Advance {
	const dependencies = adjacency(def.stages.length, edgesOf(def), "dependencies");
	const next = stages.map(stage => ({ ...stage }));

	// In dependency order, so one pass carries a skip down a whole chain.
	for (const index of topologicalOrder(def)) {
		const stage = next[index];
		if (stage?.status !== "waiting") continue;
		const blocker = dependencies[index].find(dep => blocks(def, next, dep));
		if (blocker === undefined) continue;
		stage.status = "skipped";
		stage.error = `required stage ${blocker} (${next[blocker].name}) ${next[blocker].status}`;
	}

	const ready = readyStages(def, next);
	const inProgress = next.some(stage => stage.status === "waiting" || stage.status === "running");
	let runStatus: RunStatus | null = null;
	if (!inProgress) {
		const requiredEndedBadly = next.some(stage => ENDED_BADLY.includes(stage.status) && isRequired(def.stages[stage.index]));
		runStatus = requiredEndedBadly ? "failed" : "completed";
	}
	return { stages: next, ready, runStatus };
}

/**
 * Share of stages that have finished (completed, failed or skipped), to 2 decimals. Cancelled
 * stages do not count: a cancelled run should show how far it got, not jump to 1.
 */
export function progressOf(stages: RunStage[]): number {
	if (stages.length === 0) return 0;
	const finished = stages.filter(stage => stage.status === "completed" || stage.status === "failed" || stage.status === "skipped").length;
	return Math.round((finished / stages.length) * 100) / 100;
}

export function completedStages(stages: RunStage[]): number[] {
	return stages
		.filter(stage => stage.status === "completed")
		.map(stage => stage.index)
		.sort((a, b) => a - b);
}

/** The lowest running stage: with parallel branches there can be several, and the run shape has one. */
export function currentStage(stages: RunStage[]): number | null {
	const running = stages.filter(stage => stage.status === "running").map(stage => stage.index);
	return running.length > 0 ? Math.min(...running) : null;
}

/**
 * What stage `index` gets from the stages it depends on, for its task payload:
 * `{ [dependency name]: { index, status, result } }`. Every dependency appears, so a stage can tell
 * an optional dependency that failed (status "failed", result null) from one that produced null.
 */
export function dependencyResults(def: PipelineGraph, stages: RunStage[], index: number): Record<string, DependencyResult> {
	const results: Record<string, DependencyResult> = {};
	for (const dep of dependenciesOf(def, index)) {
		const stage = stages[dep];
		if (!stage) continue;
		results[def.stages[dep]?.name ?? stage.name] = {
			index: dep,
			status: stage.status,
			result: stage.status === "completed" ? stage.result : null
		};
	}
	return results;
}

/** A failed run's stages for a retry: what did not complete waits again; completed work is kept. */
export function stagesForRetry(stages: RunStage[]): RunStage[] {
	return stages.map(stage =>
		ENDED_BADLY.includes(stage.status) ? { ...stage, status: "waiting", task_id: null, result: null, error: null } : { ...stage }
	);
}
