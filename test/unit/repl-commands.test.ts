import { Errors } from "moleculer";
import { notFound } from "../../src/platform/errors";
import {
	agentsCommand, agentsTable, describeError, drainCommand, formatTable, runActionCommand, runsCommand, runsTable,
	tasksCommand, tasksTable, tokenCommand, tokenOptions, UsageError, type Caller
} from "../../src/platform/repl-commands";
import { verifyToken } from "../../src/platform/tokens";
import type { Agent, Task } from "../../src/types";

function agent(over: Partial<Agent> = {}): Agent {
	return {
		id: "agent-1", name: "worker-one", type: "worker", status: "active", capabilities: ["analysis"], endpoints: {}, resources: {},
		node_id: null, service: null, current_load: 0.5, running_tasks: 2, last_heartbeat: "2026-01-01T00:00:00.000Z",
		registered_at: "2026-01-01T00:00:00.000Z", updated_at: "2026-01-01T00:00:00.000Z", ...over
	};
}

function task(over: Partial<Task> = {}): Task {
	return {
		task_id: "task-1", created_by: null, pipeline_id: null, run_id: null, stage: null, type: "analysis", payload: {}, priority: "high", timeout: 60,
		retry_count: 0, required_capabilities: [], status: "running", progress: 0.25, assigned_agent: "agent-1", attempt: 1, result: null,
		error: null, logs: [], idempotency_key: null, created_at: "2026-01-01T00:00:00.000Z", started_at: null,
		updated_at: "2026-01-01T00:00:05.123Z", finished_at: null, next_attempt_at: null, ...over
	};
}

/** A fake broker: a table of action handlers; a missing action throws like Moleculer does. */
function fakeBroker(handlers: Record<string, (params: any) => unknown>): Caller & { calls: [string, object | undefined][] } {
	const calls: [string, object | undefined][] = [];
	return {
		calls,
		async call(action: string, params?: object) {
			calls.push([action, params]);
			const handler = handlers[action];
			if (!handler) throw new Errors.ServiceNotFoundError({ action });
			return handler(params);
		}
	};
}

describe("formatTable", () => {
	test("pads columns to their widest cell, upper-cases the header and rules it", () => {
		const text = formatTable(["id", "name"], [["a", "long name"], ["bbbb", "x"]]);
		expect(text.split("\n")).toEqual([
			"ID    NAME",
			"----  ---------",
			"a     long name",
			"bbbb  x"
		]);
	});

	test("prints empty cells as '-', flattens whitespace and shortens long cells", () => {
		const long = "y".repeat(100);
		const lines = formatTable(["a", "b", "c"], [[null, "two\nlines", long], [undefined, "", 0]]).split("\n");
		expect(lines[2]).toMatch(/^-  two lines  y{47}…$/);
		expect(lines[3]).toMatch(/^-  -\s+0$/);
	});

	test("a header-only table for no rows, and no trailing spaces", () => {
		const text = formatTable(["id", "status"], []);
		expect(text).toBe("ID  STATUS\n--  ------");
		expect(formatTable(["a", "b"], [["x", ""]]).split("\n").every(l => l === l.trimEnd())).toBe(true);
	});
});

describe("entity tables", () => {
	test("agents: id, name, type, status, load, running, node", () => {
		const text = agentsTable([agent(), agent({ id: "agent-2", name: "w2", status: "draining", node_id: "node-7", current_load: 1 })]);
		const [header, , first, second] = text.split("\n");
		expect(header.split(/\s+/)).toEqual(["ID", "NAME", "TYPE", "STATUS", "LOAD", "RUNNING", "NODE"]);
		expect(first.split(/\s+/)).toEqual(["agent-1", "worker-one", "worker", "active", "0.50", "2", "-"]);
		expect(second.split(/\s+/)).toEqual(["agent-2", "w2", "worker", "draining", "1.00", "2", "node-7"]);
		expect(agentsTable([])).toBe("No agents.");
	});

	test("tasks: progress in percent, timestamps without milliseconds, a count when paged", () => {
		const text = tasksTable([task()], 5);
		expect(text).toContain("25%");
		expect(text).toContain("2026-01-01T00:00:05Z");
		expect(text.split("\n").at(-1)).toBe("(1 of 5 tasks)");
		expect(tasksTable([task()], 1)).not.toContain("tasks)");
		expect(tasksTable([])).toBe("No tasks.");
	});

	test("runs: completed stages out of all stages when the run has them", () => {
		const text = runsTable([
			{ run_id: "run-1", pipeline_id: "p-1", status: "running", progress: 1 / 3, current_stage: 2, completed_stages: [0, 1], stages: new Array(6).fill({}) },
			{ run_id: "run-2", pipeline_id: "p-1", status: "completed", completed_stages: [0] }
		]);
		const lines = text.split("\n");
		expect(lines[0].split(/\s+/)).toEqual(["RUN_ID", "PIPELINE_ID", "STATUS", "PROGRESS", "STAGE", "COMPLETED", "CREATED"]);
		expect(lines[2].split(/\s+/)).toEqual(["run-1", "p-1", "running", "33%", "2", "2/6", "-"]);
		expect(lines[3].split(/\s+/)).toEqual(["run-2", "p-1", "completed", "-", "-", "1", "-"]);
		expect(runsTable([])).toBe("No runs.");
	});
});

describe("commands", () => {
	test("agents and tasks pass the status filter and print the list", async () => {
		const broker = fakeBroker({ "agents.list": () => ({ agents: [agent()] }), "tasks.list": () => ({ tasks: [task()], total: 1 }) });
		expect(await agentsCommand(broker, "active")).toContain("worker-one");
		expect(await tasksCommand(broker)).toContain("task-1");
		expect(broker.calls).toEqual([["agents.list", { status: "active" }], ["tasks.list", {}]]);
	});

	test("drain prints the drained agent", async () => {
		const broker = fakeBroker({ "agents.drain": ({ id }) => agent({ id, status: "draining" }) });
		expect(await drainCommand(broker, "agent-9")).toMatch(/agent-9\s+worker-one\s+worker\s+draining/);
	});

	test("runs of one pipeline, and the most recent runs of all", async () => {
		const broker = fakeBroker({
			"pipelines.list": () => ({ pipelines: [{ pipeline_id: "p-1" }, { pipeline_id: "p-2" }] }),
			"pipelines.get": ({ id }) => ({
				pipeline_id: id,
				runs: [{ run_id: `${id}-old`, status: "completed", created_at: "2026-01-01T00:00:00Z" }, { run_id: `${id}-new`, status: "running", created_at: id === "p-1" ? "2026-01-03T00:00:00Z" : "2026-01-02T00:00:00Z" }]
			})
		});
		const one = await runsCommand(broker, "p-2");
		expect(one).toMatch(/p-2-new\s+p-2\s+running/);
		expect(one).not.toContain("p-1");
		const all = (await runsCommand(broker)).split("\n").slice(2).map(l => l.split(/\s+/)[0]);
		expect(all).toEqual(["p-1-new", "p-2-new", "p-1-old", "p-2-old"]);
	});

	test("cancel and retry: <pipeline_id> <run_id> directly, <run_id> alone after looking up its pipeline", async () => {
		const broker = fakeBroker({
			"pipelines.list": () => [{ pipeline_id: "p-1", runs: [{ run_id: "r-1" }] }, { pipeline_id: "p-2", runs: [{ run_id: "r-2" }] }],
			"pipelines.cancelRun": ({ id, run_id }) => ({ run_id, pipeline_id: id, status: "cancelled" }),
			"pipelines.retryRun": () => ({ accepted: true })
		});
		expect(await runActionCommand(broker, "cancel", "p-9", "r-9")).toMatch(/r-9\s+p-9\s+cancelled/);
		expect(await runActionCommand(broker, "cancel", "r-2")).toMatch(/r-2\s+p-2\s+cancelled/);
		expect(await runActionCommand(broker, "retry", "r-1")).toBe("Retried run r-1 of pipeline p-1");
		expect(broker.calls.filter(([a]) => a === "pipelines.cancelRun" || a === "pipelines.retryRun")).toEqual([
			["pipelines.cancelRun", { id: "p-9", run_id: "r-9" }],
			["pipelines.cancelRun", { id: "p-2", run_id: "r-2" }],
			["pipelines.retryRun", { id: "p-1", run_id: "r-1" }]
		]);
		await expect(runActionCommand(broker, "cancel", "r-404")).rejects.toThrow(UsageError);
	});

	test("a short answer ({ run_id, status }) is completed from pipelines.getRun", async () => {
		const broker = fakeBroker({
			"pipelines.retryRun": ({ id, run_id }) => ({ run_id, pipeline_id: id, status: "running" }),
			"pipelines.getRun": ({ id, run_id }) => ({ run_id, pipeline_id: id, status: "running", progress: 0.5, current_stage: 3, completed_stages: [0, 1, 2], stages: new Array(6).fill({}) })
		});
		expect(await runActionCommand(broker, "retry", "p-1", "r-1")).toMatch(/r-1\s+p-1\s+running\s+50%\s+3\s+3\/6/);
		const without = fakeBroker({ "pipelines.retryRun": ({ id, run_id }) => ({ run_id, pipeline_id: id, status: "running" }) });
		expect(await runActionCommand(without, "retry", "p-1", "r-1")).toMatch(/r-1\s+p-1\s+running\s+-/);
	});

	test("a missing action is a clear message, not a crash", async () => {
		const broker = fakeBroker({});
		const err = await runsCommand(broker).catch(e => e);
		expect(describeError(err, "pipelines.get")).toBe(
			"The action 'pipelines.list' is not available: no node of this cluster runs it (is the 'pipelines' service started, and does it have this action?)"
		);
	});

	test("errors from services and the validator read as one line", () => {
		expect(describeError(notFound("Agent", "x"), "agents.drain")).toBe("agents.drain failed (404 NOT_FOUND): Agent 'x' not found");
		const invalid = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ field: "status", message: "The 'status' field does not match any of the allowed values." }
		]);
		expect(describeError(invalid, "tasks.list")).toBe("Invalid parameters for 'tasks.list': The 'status' field does not match any of the allowed values.");
	});
});

describe("tokens", () => {
	const secret = "repl-test-secret";

	test("roles as a comma list or several values, deduplicated, with a default lifetime", () => {
		expect(tokenOptions({ roles: "viewer, operator,viewer", sub: "alice" })).toEqual({ sub: "alice", roles: ["viewer", "operator"], expiresInSec: 3600 });
		expect(tokenOptions({ roles: ["admin", "viewer"], sub: "root", expiresIn: "60" })).toMatchObject({ roles: ["admin", "viewer"], expiresInSec: 60 });
	});

	test("agent tokens need an agent id and stand alone; the subject defaults to agent:<id>", () => {
		expect(tokenOptions({ roles: "agent", agentId: "agent-7" })).toEqual({ sub: "agent:agent-7", roles: ["agent"], expiresInSec: 3600, agent_id: "agent-7" });
		expect(() => tokenOptions({ roles: "agent" })).toThrow(/agent id/);
		expect(() => tokenOptions({ roles: "agent,viewer", agentId: "a" })).toThrow(/cannot be combined/);
		expect(() => tokenOptions({ roles: "viewer", sub: "x", agentId: "a" })).toThrow(/only for the agent role/);
	});

	test.each([
		[{ roles: "", sub: "x" }, /roles are required/],
		[{ roles: "superuser", sub: "x" }, /unknown role 'superuser'/],
		[{ roles: "viewer" }, /subject is required/],
		[{ roles: "viewer", sub: "x", expiresIn: "0" }, /positive/],
		[{ roles: "viewer", sub: "x", expiresIn: "1.5" }, /positive/],
		[{ roles: "viewer", sub: "x", expiresIn: "soon" }, /positive/]
	])("rejects %j", (args, message) => {
		expect(() => tokenOptions(args)).toThrow(UsageError);
		expect(() => tokenOptions(args)).toThrow(message);
	});

	test("the REPL's token verifies with the secret and carries the claims", () => {
		const [token, summary] = tokenCommand(secret, { roles: "operator", sub: "alice", expiresIn: 120 }).split("\n");
		expect(verifyToken(secret, token)).toEqual({ sub: "alice", roles: ["operator"] });
		expect(summary).toBe("(sub alice, roles operator, expires in 120 s)");
		const agentToken = tokenCommand(secret, { roles: "agent", agentId: "agent-3" }).split("\n")[0];
		expect(verifyToken(secret, agentToken)).toEqual({ sub: "agent:agent-3", roles: ["agent"], agent_id: "agent-3" });
	});
});
