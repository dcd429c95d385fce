/**
 * The panel's actions in a real browser, checked against what REST reports afterwards: Cancel and
 * Retry with their audit records, bulk cancel after the server's dry-run count, why a task waits,
 * and a viewer who is shown none of the controls.
 */
import type { AuditEntry, Task } from "../../src/types";
import { describeBrowser } from "../support/browser";
import { fail } from "../support/http-agent";
import { waitFor } from "../support/http";
import { openPanel } from "./panel-support";
import { panelFixture } from "./panel-fixture";

jest.setTimeout(120_000);

const CONTROLS = ["Cancel", "Retry", "Drain", "Remove", "Create", "Execute", "Cancel tasks…", "Retry failed…"];

describeBrowser("web panel: actions and roles", () => {
	const panel = panelFixture();
	beforeAll(() => panel.setup());
	afterAll(() => panel.teardown());

	const auditOf = async (action: string, target: string) => {
		const res = await panel.get().admin.get(`/api/v1/audit?action=${encodeURIComponent(action)}&limit=1000`);
		return (res.body.entries as AuditEntry[]).filter(e => e.target === target);
	};

	test("Cancel in the panel cancels the task (as REST reports it) and writes an audit record", async () => {
		const { context, server, adminToken, admin, createTask } = panel.get();
		const task = await createTask({ type: "panel-cancel", required_capabilities: ["nobody-has-this"] });
		const page = await openPanel(context, server.url, adminToken, `tasks/${task.task_id}`);
		page.once("dialog", dialog => void dialog.accept());
		await page.getByRole("button", { name: "Cancel", exact: true }).click();
		// The page follows by itself: the task's event brings the new status.
		await page.locator(".facts .badge", { hasText: "cancelled" }).waitFor();
		expect((await admin.get(`/api/v1/tasks/${task.task_id}`)).body.status).toBe("cancelled");
		const entries = await waitFor(async () => {
			const found = await auditOf("tasks.cancel", task.task_id);
			return found.length > 0 && found;
		});
		expect(entries[0]).toMatchObject({ actor: "panel-admin", result: "success", status: 200, method: "POST" });
		// A cancelled task can run again: Retry is offered, and it is pending once more.
		await page.getByRole("button", { name: "Retry", exact: true }).click();
		await page.locator(".facts .badge", { hasText: "pending" }).waitFor();
		expect((await admin.get(`/api/v1/tasks/${task.task_id}`)).body.status).toBe("pending");
		expect(await auditOf("tasks.retry", task.task_id)).toHaveLength(1);
		await page.close();
	});

	test("a task waiting on a capability no agent has: the panel names the reason for each agent", async () => {
		const { context, server, adminToken, registerAgent, createTask } = panel.get();
		await registerAgent("cpu-only", ["task-execution"]);
		const task = await createTask({ type: "analysis", required_capabilities: ["gpu-a100"] });
		const page = await openPanel(context, server.url, adminToken, `tasks/${task.task_id}`);
		const explain = page.getByTestId("explain");
		await explain.getByText("cpu-only").waitFor();
		expect(await explain.locator("li", { hasText: "cpu-only" }).textContent()).toContain("lacks gpu-a100");
		await page.close();
	});

	test("bulk cancel: the dry-run count is what it then cancels", async () => {
		const { context, server, adminToken, admin, createTask } = panel.get();
		const created: Task[] = [];
		for (let i = 0; i < 7; i++) created.push(await createTask({ type: "bulk-doomed", required_capabilities: ["nobody-has-this"] }));
		// Another type under the same status stays untouched.
		const bystander = await createTask({ type: "bulk-bystander", required_capabilities: ["nobody-has-this"] });
		const page = await openPanel(context, server.url, adminToken, "tasks?type=bulk-doomed&status=pending");
		await page.getByTestId("task-count").filter({ hasText: "7 shown" }).waitFor();
		await page.getByRole("button", { name: "Cancel tasks…" }).click();
		await page.getByTestId("bulk-matched").filter({ hasText: "7 tasks match (status pending, type bulk-doomed)" }).waitFor();
		await page.getByRole("button", { name: "Cancel 7 tasks" }).click();
		await page.getByTestId("bulk-result").filter({ hasText: "7 of 7 cancelled" }).waitFor();
		const after = await admin.get("/api/v1/tasks?type=bulk-doomed&limit=100");
		expect((after.body.tasks as Task[]).map(t => t.status)).toEqual(Array(7).fill("cancelled"));
		expect((await admin.get(`/api/v1/tasks/${bystander.task_id}`)).body.status).toBe("pending");
		// The list follows: nothing pending of that type is left.
		await page.getByTestId("task-count").filter({ hasText: /^0 shown/ }).waitFor();
		for (const t of created) expect((await admin.get(`/api/v1/tasks/${t.task_id}`)).body.status).toBe("cancelled");
		const audited = (await admin.get("/api/v1/audit?action=tasks.bulk&limit=100")).body.entries as AuditEntry[];
		expect(audited.some(e => e.actor === "panel-admin" && e.result === "success")).toBe(true);
		await page.close();
	});

	test("bulk retry re-runs the failed tasks of the filter", async () => {
		const { context, server, adminToken, admin, registerAgent, createTask } = panel.get();
		// Only this agent has the capability: the generic agents of other tests would complete them.
		await registerAgent("always-fails", ["bulk-flaky", "fails-here"], fail("broken on purpose", false));
		for (let i = 0; i < 3; i++) await createTask({ type: "bulk-flaky", retry_count: 0, required_capabilities: ["fails-here"] });
		await waitFor(async () => (await admin.get("/api/v1/tasks?type=bulk-flaky&status=failed")).body.total === 3);
		const page = await openPanel(context, server.url, adminToken, "tasks?type=bulk-flaky");
		await page.getByRole("button", { name: "Retry failed…" }).click();
		await page.getByTestId("bulk-matched").filter({ hasText: "3 tasks match (status failed, type bulk-flaky)" }).waitFor();
		await page.getByRole("button", { name: "Retry 3 failed" }).click();
		await page.getByTestId("bulk-result").filter({ hasText: "3 of 3 retried" }).waitFor();
		// Each ran again (and failed again: the agent always fails).
		await waitFor(async () => {
			const { tasks } = (await admin.get("/api/v1/tasks?type=bulk-flaky")).body as { tasks: Task[] };
			return tasks.every(t => t.attempt >= 2 && t.status === "failed");
		});
		await page.close();
	});

	test("Drain and Remove in the Agents view change the agent as REST reports it", async () => {
		const { context, server, adminToken, admin, registerAgent } = panel.get();
		const agent = await registerAgent("to-be-drained", ["drain-me"]);
		const page = await openPanel(context, server.url, adminToken, "agents");
		const row = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "to-be-drained" }) });
		await row.getByRole("button", { name: "Drain" }).click();
		await row.locator(".badge", { hasText: "draining" }).waitFor();
		expect((await admin.get(`/api/v1/agents/${agent.id}`)).body.status).toBe("draining");
		page.once("dialog", dialog => void dialog.accept());
		await row.getByRole("button", { name: "Remove" }).click();
		await page.getByRole("rowheader", { name: "to-be-drained" }).waitFor({ state: "detached" });
		expect((await admin.get(`/api/v1/agents/${agent.id}`)).status).toBe(404);
		await page.close();
	});

	test("a viewer is shown no Cancel, Retry, Drain, Remove, Create, Execute or bulk action, and no Audit", async () => {
		const { context, server, admin, createTask, registerAgent } = panel.get();
		await registerAgent("viewer-sees-me", ["task-execution"]);
		const waiting = await createTask({ type: "viewer-task", required_capabilities: ["nobody-has-this"] });
		const cancelled = await createTask({ type: "viewer-task", required_capabilities: ["nobody-has-this"] });
		await admin.post(`/api/v1/tasks/${cancelled.task_id}/cancel`);
		const pipeline = (await admin.post("/api/v1/pipelines", { name: "viewer-pipeline", stages: [{ name: "only", type: "analysis" }] })).body;
		const page = await openPanel(context, server.url, server.token(["viewer"], "just-looking"));
		const views = [
			["agents", "viewer-sees-me"],
			[`tasks/${waiting.task_id}`, "Why it waits"],
			[`tasks/${cancelled.task_id}`, "Logs"],
			["tasks", "shown"],
			["pipelines", "viewer-pipeline"],
			[`pipelines/${pipeline.pipeline_id}`, "Runs (0)"]
		];
		for (const [view, marker] of views) {
			await page.evaluate(v => (location.hash = `#/${v}`), view);
			await page.getByText(marker).first().waitFor();
			for (const name of CONTROLS) expect(`${view}: ${await page.getByRole("button", { name, exact: true }).count()} "${name}"`).toBe(`${view}: 0 "${name}"`);
		}
		expect(await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: "Audit" }).count()).toBe(0);
		await page.close();
	});
});
