import {
	advance,
	completedStages,
	currentStage,
	dependenciesOf,
	dependencyResults,
	dependentsOf,
	findCycle,
	initialStages,
	MAX_STAGES,
	NormalizedPipeline,
	progressOf,
	readyStages,
	stagesForRetry,
	topologicalOrder,
	validatePipeline
} from "../../src/domain/pipelines/dag";
import { STAGE_TYPES } from "../../src/types";
import type { FieldError, RunStage, StageDefinition, StageStatus } from "../../src/types";

const stage = (name: string, extra: Partial<StageDefinition> = {}): StageDefinition => ({ name, type: "processing", ...extra });

function valid(def: unknown): NormalizedPipeline {
	const outcome = validatePipeline(def);
	if (!outcome.ok) throw new Error(`expected a valid pipeline, got ${JSON.stringify(outcome.errors)}`);
	return outcome.value;
}

function invalid(def: unknown): FieldError[] {
	const outcome = validatePipeline(def);
	if (outcome.ok) throw new Error("expected validation errors");
	return outcome.errors;
}

const fieldsOf = (errors: FieldError[]) => errors.map(e => e.field);

/** A run's stages with the given statuses, results named after the stage so they can be traced. */
function runStages(def: NormalizedPipeline, statuses: StageStatus[]): RunStage[] {
	return initialStages(def).map((s, i) => ({
		...s,
		status: statuses[i],
		task_id: statuses[i] === "waiting" ? null : `task-${i}`,
		result: statuses[i] === "completed" ? { from: s.name } : null
	}));
}

/** A stage's task has ended with `status`; then the orchestrator advances the run. */
function settle(def: NormalizedPipeline, stages: RunStage[], index: number, status: StageStatus): ReturnType<typeof advance> {
	const next = stages.map(s => (s.index === index ? { ...s, status, result: status === "completed" ? { from: s.name } : null } : s));
	return advance(def, next);
}

function start(stages: RunStage[], indices: number[]): RunStage[] {
	return stages.map(s => (indices.includes(s.index) ? { ...s, status: "running" as const, task_id: `task-${s.index}` } : s));
}

const diamond = () =>
	valid({
		name: "diamond",
		stages: [stage("ingest"), stage("left"), stage("right"), stage("join")],
		dependencies: [
			{ from: 0, to: 1 },
			{ from: 0, to: 2 },
			{ from: 1, to: 3 },
			{ from: 2, to: 3 }
		]
	});

describe("validatePipeline", () => {
	it("fills defaults and makes the default sequential order explicit", () => {
		const value = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c")] });
		expect(value.stages.map(s => s.required)).toEqual([true, true, true]);
		expect(value.dependencies).toEqual([
			{ from: 0, to: 1 },
			{ from: 1, to: 2 }
		]);
	});

	it("keeps an explicit empty dependency list: every stage independent", () => {
		const value = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c")], dependencies: [] });
		expect(value.dependencies).toEqual([]);
		expect(readyStages(value, initialStages(value))).toEqual([0, 1, 2]);
	});

	it("keeps optional fields, an explicit required: false, and drops unknown keys", () => {
		const value = valid({
			name: "p",
			description: "d",
			extra: 1,
			stages: [
				{
					name: "a",
					type: "analysis",
					required: false,
					timeout: 30,
					retry_count: 0,
					required_capabilities: ["gpu"],
					parameters: { depth: 2 },
					bogus: true
				}
			]
		});
		expect(value).toEqual({
			name: "p",
			description: "d",
			stages: [{ name: "a", type: "analysis", required: false, timeout: 30, retry_count: 0, required_capabilities: ["gpu"], parameters: { depth: 2 } }],
			dependencies: []
		});
	});

	it("deduplicates repeated edges", () => {
		const value = valid({
			name: "p",
			stages: [stage("a"), stage("b")],
			dependencies: [
				{ from: 0, to: 1 },
				{ from: 0, to: 1 }
			]
		});
		expect(value.dependencies).toEqual([{ from: 0, to: 1 }]);
	});

	it("names a bad stage type's field and lists the allowed values", () => {
		const errors = invalid({ name: "p", stages: [stage("a"), stage("b"), { name: "c", type: "teleport" }] });
		expect(errors).toHaveLength(1);
		expect(errors[0].field).toBe("stages[2].type");
		for (const type of STAGE_TYPES) expect(errors[0].message).toContain(type);
	});

	it("requires a pipeline name and stage names", () => {
		expect(fieldsOf(invalid({ stages: [stage("a")] }))).toEqual(["name"]);
		expect(fieldsOf(invalid({ name: "  ", stages: [stage("a")] }))).toEqual(["name"]);
		expect(fieldsOf(invalid({ name: "p", stages: [stage("a"), { type: "output" }] }))).toEqual(["stages[1].name"]);
	});

	it("requires a non-empty stages array of at most MAX_STAGES", () => {
		expect(fieldsOf(invalid({ name: "p" }))).toEqual(["stages"]);
		expect(fieldsOf(invalid({ name: "p", stages: [] }))).toEqual(["stages"]);
		const tooMany = Array.from({ length: MAX_STAGES + 1 }, (_, i) => stage(`s${i}`));
		expect(fieldsOf(invalid({ name: "p", stages: tooMany }))).toEqual(["stages"]);
		const most = Array.from({ length: MAX_STAGES }, (_, i) => stage(`s${i}`));
		expect(valid({ name: "p", stages: most }).dependencies).toHaveLength(MAX_STAGES - 1);
	});

	it("checks the optional stage fields", () => {
		const errors = invalid({
			name: "p",
			stages: [{ name: "a", type: "output", required: "yes", timeout: 0, retry_count: -1, required_capabilities: ["x", 1], parameters: [] }]
		});
		expect(fieldsOf(errors)).toEqual([
			"stages[0].required",
			"stages[0].timeout",
			"stages[0].retry_count",
			"stages[0].required_capabilities",
			"stages[0].parameters"
		]);
		expect(fieldsOf(invalid({ name: "p", stages: [stage("a", { timeout: 1.5 })] }))).toEqual(["stages[0].timeout"]);
	});

	it("rejects two stages with the same name (dependency results are keyed by name)", () => {
		expect(fieldsOf(invalid({ name: "p", stages: [stage("a"), stage("a")] }))).toEqual(["stages[1].name"]);
	});

	it("names both ends of an edge with an unknown stage index", () => {
		const errors = invalid({ name: "p", stages: [stage("a"), stage("b")], dependencies: [{ from: 5, to: 1 }, { from: 0, to: -1 }] });
		expect(fieldsOf(errors)).toEqual(["dependencies[0].from", "dependencies[1].to"]);
		expect(errors[0].message).toContain("5");
	});

	it("rejects non-integer edge ends", () => {
		expect(fieldsOf(invalid({ name: "p", stages: [stage("a"), stage("b")], dependencies: [{ from: "0", to: 1.5 }] }))).toEqual([
			"dependencies[0].from",
			"dependencies[0].to"
		]);
		expect(fieldsOf(invalid({ name: "p", stages: [stage("a")], dependencies: {} }))).toEqual(["dependencies"]);
	});

	it("rejects a self-loop", () => {
		const errors = invalid({ name: "p", stages: [stage("a"), stage("b")], dependencies: [{ from: 1, to: 1 }] });
		expect(fieldsOf(errors)).toEqual(["dependencies[0]"]);
		expect(errors[0].message).toMatch(/itself/);
	});

	it("rejects a cycle, naming the stages on it", () => {
		const errors = invalid({
			name: "p",
			stages: [stage("a"), stage("b"), stage("c")],
			dependencies: [
				{ from: 0, to: 1 },
				{ from: 1, to: 2 },
				{ from: 2, to: 1 }
			]
		});
		expect(errors).toEqual([{ field: "dependencies", message: "cycle: 1 → 2 → 1", type: "cycle" }]);
	});

	it("finds a longer cycle through a back edge", () => {
		expect(
			findCycle(4, [
				{ from: 0, to: 1 },
				{ from: 1, to: 2 },
				{ from: 2, to: 3 },
				{ from: 3, to: 0 }
			])
		).toEqual([0, 1, 2, 3, 0]);
		expect(findCycle(4, diamond().dependencies)).toBeNull();
	});

	it("rejects a body that is not an object", () => {
		expect(fieldsOf(invalid(null))).toEqual(["body"]);
		expect(fieldsOf(invalid([]))).toEqual(["body"]);
	});
});

describe("graph queries", () => {
	it("lists dependencies and dependents, defaulting to sequential when dependencies are absent", () => {
		const def = diamond();
		expect(dependenciesOf(def, 3)).toEqual([1, 2]);
		expect(dependentsOf(def, 0)).toEqual([1, 2]);
		expect(dependenciesOf(def, 0)).toEqual([]);
		const unnormalized = { stages: [stage("a"), stage("b"), stage("c")] };
		expect(dependenciesOf(unnormalized, 2)).toEqual([1]);
		expect(dependentsOf(unnormalized, 0)).toEqual([1]);
	});

	it("orders stages after their dependencies", () => {
		const def = valid({
			name: "p",
			stages: [stage("a"), stage("b"), stage("c")],
			dependencies: [
				{ from: 2, to: 0 },
				{ from: 0, to: 1 }
			]
		});
		expect(topologicalOrder(def)).toEqual([2, 0, 1]);
	});
});

describe("running a pipeline", () => {
	it("starts with every stage waiting and nothing attached", () => {
		const stages = initialStages(diamond());
		expect(stages.map(s => [s.index, s.name, s.status, s.task_id, s.result])).toEqual([
			[0, "ingest", "waiting", null, null],
			[1, "left", "waiting", null, null],
			[2, "right", "waiting", null, null],
			[3, "join", "waiting", null, null]
		]);
	});

	it("runs default-sequential stages one after another to completion", () => {
		const def = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c")] });
		let step = advance(def, initialStages(def));
		const started: number[][] = [];
		while (step.runStatus === null) {
			started.push(step.ready);
			const running = start(step.stages, step.ready);
			step = settle(def, running, step.ready[0], "completed");
		}
		expect(started).toEqual([[0], [1], [2]]);
		expect(step.runStatus).toBe("completed");
	});

	it("fans out after the root and fans in only when both branches complete", () => {
		const def = diamond();
		let step = advance(def, initialStages(def));
		expect(step.ready).toEqual([0]);

		step = settle(def, start(step.stages, [0]), 0, "completed");
		expect(step.ready).toEqual([1, 2]);
		let stages = start(step.stages, [1, 2]);

		step = settle(def, stages, 1, "completed");
		expect(step.ready).toEqual([]);
		expect(step.runStatus).toBeNull();
		stages = step.stages;

		step = settle(def, stages, 2, "completed");
		expect(step.ready).toEqual([3]);

		step = settle(def, start(step.stages, [3]), 3, "completed");
		expect(step.ready).toEqual([]);
		expect(step.runStatus).toBe("completed");
	});

	it("skips the dependents of a failed required stage and fails the run once the rest has finished", () => {
		const def = diamond();
		// left failed while right is still running: join can never run, but the run is not over yet.
		let step = advance(def, runStages(def, ["completed", "failed", "running", "waiting"]));
		expect(step.stages[3].status).toBe("skipped");
		expect(step.stages[3].error).toContain("stage 1");
		expect(step.ready).toEqual([]);
		expect(step.runStatus).toBeNull();

		step = settle(def, step.stages, 2, "completed");
		expect(step.runStatus).toBe("failed");
	});

	it("carries a skip down a whole chain", () => {
		const def = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c"), stage("d")] });
		const step = advance(def, runStages(def, ["failed", "waiting", "waiting", "waiting"]));
		expect(step.stages.map(s => s.status)).toEqual(["failed", "skipped", "skipped", "skipped"]);
		expect(step.runStatus).toBe("failed");
	});

	it("lets dependents of a failed optional stage run, and the run completes", () => {
		const def = valid({
			name: "p",
			stages: [stage("a"), stage("extra", { required: false }), stage("b")]
		});
		let step = advance(def, runStages(def, ["completed", "failed", "waiting"]));
		expect(step.stages[2].status).toBe("waiting");
		expect(step.ready).toEqual([2]);
		expect(step.runStatus).toBeNull();

		step = settle(def, start(step.stages, [2]), 2, "completed");
		expect(step.runStatus).toBe("completed");
	});

	it("fails the run when a required stage was cancelled", () => {
		const def = valid({ name: "p", stages: [stage("a"), stage("b")], dependencies: [] });
		expect(advance(def, runStages(def, ["completed", "cancelled"])).runStatus).toBe("failed");
	});

	it("does not change the stages it is given", () => {
		const def = diamond();
		const stages = runStages(def, ["failed", "waiting", "waiting", "waiting"]);
		const snapshot = JSON.parse(JSON.stringify(stages));
		advance(def, stages);
		expect(stages).toEqual(snapshot);
	});

	it("reports ready stages without marking anything", () => {
		const def = diamond();
		expect(readyStages(def, runStages(def, ["completed", "waiting", "running", "waiting"]))).toEqual([1]);
		expect(readyStages(def, runStages(def, ["failed", "waiting", "waiting", "waiting"]))).toEqual([]);
	});
});

describe("run summaries", () => {
	const def = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c")], dependencies: [] });

	it("measures progress over finished stages, to two decimals", () => {
		expect(progressOf(runStages(def, ["waiting", "waiting", "waiting"]))).toBe(0);
		expect(progressOf(runStages(def, ["completed", "running", "waiting"]))).toBe(0.33);
		expect(progressOf(runStages(def, ["completed", "failed", "waiting"]))).toBe(0.67);
		expect(progressOf(runStages(def, ["completed", "failed", "skipped"]))).toBe(1);
		expect(progressOf(runStages(def, ["completed", "cancelled", "cancelled"]))).toBe(0.33);
	});

	it("lists completed stages ascending", () => {
		expect(completedStages(runStages(def, ["completed", "failed", "completed"]))).toEqual([0, 2]);
		expect(completedStages(runStages(def, ["waiting", "waiting", "waiting"]))).toEqual([]);
	});

	it("names the lowest running stage as current", () => {
		expect(currentStage(runStages(def, ["completed", "running", "running"]))).toBe(1);
		expect(currentStage(runStages(def, ["completed", "completed", "failed"]))).toBeNull();
	});
});

describe("dependencyResults", () => {
	it("gives each dependency's index, status and result, keyed by its name", () => {
		const def = diamond();
		const stages = runStages(def, ["completed", "completed", "completed", "waiting"]);
		expect(dependencyResults(def, stages, 3)).toEqual({
			left: { index: 1, status: "completed", result: { from: "left" } },
			right: { index: 2, status: "completed", result: { from: "right" } }
		});
		expect(dependencyResults(def, stages, 0)).toEqual({});
	});

	it("passes no result from a failed optional dependency", () => {
		const def = valid({ name: "p", stages: [stage("a", { required: false }), stage("b")] });
		const stages = runStages(def, ["failed", "waiting"]);
		stages[0].result = { partial: true };
		expect(dependencyResults(def, stages, 1)).toEqual({ a: { index: 0, status: "failed", result: null } });
	});
});

describe("stagesForRetry", () => {
	it("puts failed, skipped and cancelled stages back to waiting and keeps completed results", () => {
		const def = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c"), stage("d")], dependencies: [] });
		const stages = runStages(def, ["completed", "failed", "skipped", "cancelled"]);
		stages[1].error = "boom";
		const retried = stagesForRetry(stages);
		expect(retried[0]).toEqual(stages[0]);
		for (const s of retried.slice(1)) expect(s).toMatchObject({ status: "waiting", task_id: null, result: null, error: null });
		expect(stages[1].status).toBe("failed");

		// The retried run picks up where it stopped.
		const step = advance(def, retried);
		expect(step.ready).toEqual([1, 2, 3]);
	});

	it("resumes a sequential run after the completed prefix", () => {
		const def = valid({ name: "p", stages: [stage("a"), stage("b"), stage("c")] });
		const failed = advance(def, runStages(def, ["completed", "failed", "waiting"]));
		expect(failed.runStatus).toBe("failed");
		const step = advance(def, stagesForRetry(failed.stages));
		expect(step.stages.map(s => s.status)).toEqual(["completed", "waiting", "waiting"]);
		expect(step.ready).toEqual([1]);
	});
});
