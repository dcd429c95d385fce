/**
 * Every view of the panel with real data in it: axe finds no serious or critical violation, the
 * keyboard reaches and works the controls, and each view is saved as a screenshot
 * (test/e2e/__screenshots__, not committed).
 */
import type { Page } from "playwright-core";
import { describeBrowser } from "../support/browser";
import { complete, fail } from "../support/http-agent";
import { waitFor } from "../support/http";
import { openPanel, screenshot, seriousViolations } from "./panel-support";
import { panelFixture } from "./panel-fixture";

jest.setTimeout(120_000);

describeBrowser("web panel: accessibility of every view", () => {
	const panel = panelFixture();
	const views: Array<{ name: string; hash: string; ready: string }> = [];

	beforeAll(async () => {
		await panel.setup();
		const { admin, registerAgent, createTask } = panel.get();
		await registerAgent("worker-a", ["task-execution"], complete({ rows: 42 }), 4);
		await registerAgent("picky-b", ["picky", "only-this"], fail("bad input", false), 1);
		const pipeline = (await admin.post("/api/v1/pipelines", {
			name: "fan-out",
			stages: [{ name: "ingest", type: "data-ingestion" }, { name: "left", type: "transformation" }, { name: "right", type: "analysis" }, { name: "report", type: "output" }],
			dependencies: [{ from: 0, to: 1 }, { from: 0, to: 2 }, { from: 1, to: 3 }, { from: 2, to: 3 }]
		})).body;
		const run = (await admin.post(`/api/v1/pipelines/${pipeline.pipeline_id}/execute`, { input_data: { source: "sample.csv" } })).body;
		await waitFor(async () => (await admin.get(`/api/v1/pipelines/${pipeline.pipeline_id}/runs/${run.run_id}`)).body.status === "completed");
		const waiting = await createTask({ type: "analysis", required_capabilities: ["gpu-a100"] });
		const failed = await createTask({ type: "picky", required_capabilities: ["only-this"], retry_count: 0 });
		await waitFor(async () => (await admin.get(`/api/v1/tasks/${failed.task_id}`)).body.status === "failed");
		views.push(
			{ name: "overview", hash: "overview", ready: "Tasks by status" },
			{ name: "agents", hash: "agents", ready: "worker-a" },
			{ name: "tasks", hash: "tasks", ready: "shown" },
			{ name: "task-waiting", hash: `tasks/${waiting.task_id}`, ready: "Why it waits" },
			{ name: "task-failed", hash: `tasks/${failed.task_id}`, ready: "bad input" },
			{ name: "pipelines", hash: "pipelines", ready: "fan-out" },
			{ name: "pipeline", hash: `pipelines/${pipeline.pipeline_id}`, ready: "Runs (1)" },
			{ name: "run", hash: `pipelines/${pipeline.pipeline_id}/runs/${run.run_id}`, ready: "Run stages" },
			{ name: "audit", hash: "audit", ready: "pipelines.execute" }
		);
	}, 120_000);
	afterAll(() => panel.teardown());

	const show = async (page: Page, view: { hash: string; ready: string }) => {
		await page.evaluate(h => (location.hash = `#/${h}`), view.hash);
		await page.getByText(view.ready).or(page.getByLabel(view.ready)).first().waitFor();
		// Charts and the DAG are drawn by chunks that load on first use.
		await page.waitForLoadState("networkidle");
	};

	test("axe finds no serious or critical violation on any view, signed in or not", async () => {
		const { context, server, adminToken } = panel.get();
		const page = await openPanel(context, server.url, adminToken);
		const found: Record<string, string[]> = {};
		for (const view of views) {
			await show(page, view);
			await screenshot(page, view.name);
			const violations = await seriousViolations(page);
			if (violations.length) found[view.name] = violations;
		}
		await page.getByRole("button", { name: "Sign out" }).click();
		await page.getByRole("heading", { name: "Sign in with a token" }).waitFor();
		await screenshot(page, "sign-in");
		const signIn = await seriousViolations(page);
		if (signIn.length) found["sign-in"] = signIn;
		expect(found).toEqual({});
		await page.close();
	});

	test("the keyboard reaches the views and works the controls, with a visible focus", async () => {
		const { context, server, adminToken } = panel.get();
		const page = await openPanel(context, server.url, adminToken);
		const focused = () => page.evaluate(() => {
			const el = document.activeElement as HTMLElement | null;
			return { text: el?.textContent?.trim() ?? "", outline: el ? getComputedStyle(el).outlineStyle : "none" };
		});
		// Skip link first, then the views' tabs.
		await page.keyboard.press("Tab");
		expect((await focused()).text).toBe("Skip to content");
		await page.keyboard.press("Tab");
		const tab = await focused();
		expect(tab).toEqual({ text: "Overview", outline: "solid" });
		await page.keyboard.press("Tab");
		await page.keyboard.press("Enter");
		await page.getByText("worker-a").waitFor();
		// A run's stage opens its result from the keyboard.
		await show(page, views.find(v => v.name === "run")!);
		await page.getByRole("button", { name: /^Stage 3 report completed/ }).focus();
		await page.keyboard.press("Enter");
		await page.getByLabel("Result of stage report").waitFor();
		await page.close();
	});
});
