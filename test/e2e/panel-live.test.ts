/**
 * The web panel in a real browser against a real server: signing in, live updates without a
 * reload (agents, a pipeline run's stages), resync after the socket drops, and a path prefix
 * behind a reverse proxy.
 */
import type { Page } from "playwright-core";
import type { Service } from "moleculer";
import { describeBrowser } from "../support/browser";
import { TEST_SECRETS } from "../support/broker";
import { complete } from "../support/http-agent";
import { loadServiceSchema } from "../support/server";
import { openPanel, screenshot, startPrefixProxy } from "./panel-support";
import { panelFixture } from "./panel-fixture";

jest.setTimeout(120_000);

/** Marks the document: a reload (which would fake "live") loses the mark. */
const markDocument = (page: Page) => page.evaluate(() => ((window as unknown as { __mark: number }).__mark = 42));
const stillSameDocument = (page: Page) => page.evaluate(() => (window as unknown as { __mark?: number }).__mark === 42);

describeBrowser("web panel: sign-in, live updates, reconnects, proxies", () => {
	const panel = panelFixture();
	beforeAll(() => panel.setup());
	afterAll(() => panel.teardown());

	test("signs in through #token= and takes the token out of the address bar at once", async () => {
		const { context, server, adminToken } = panel.get();
		const page = await openPanel(context, server.url, adminToken);
		expect(page.url()).not.toContain("token=");
		// Not in the history either: going back leaves the panel, it does not find the token.
		await page.goBack();
		expect(page.url()).not.toContain("token=");
		await page.goForward();
		await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: "Audit" }).waitFor();
		// The tab keeps the session through a reload; signing out ends it.
		await page.reload();
		await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor();
		await page.getByRole("button", { name: "Sign out" }).click();
		await page.getByRole("heading", { name: "Sign in with a token" }).waitFor();
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		await page.close();
	});

	test("signs in through the form: a pasted token, or the API key exchanged for a viewer token", async () => {
		const { context, server } = panel.get();
		const page = await context.newPage();
		await page.goto(server.url + "/");
		await page.getByLabel("Access token (JWT)").fill(server.token(["operator"], "pasted-operator"));
		await page.getByRole("button", { name: "Sign in", exact: true }).click();
		await page.getByText("pasted-operator").waitFor();
		await page.getByRole("button", { name: "Sign out" }).click();

		await page.getByLabel("API key", { exact: true }).fill(TEST_SECRETS.API_KEY);
		await page.getByLabel("Your name").fill("form-viewer");
		await page.getByLabel("Role").selectOption("viewer");
		await page.getByRole("button", { name: "Get a token and sign in" }).click();
		await page.getByText("form-viewer").waitFor();
		await page.getByText("(viewer)").waitFor();
		await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor();
		// A wrong key is refused in words.
		await page.getByRole("button", { name: "Sign out" }).click();
		await page.getByLabel("API key", { exact: true }).fill("wrong-key");
		await page.getByRole("button", { name: "Get a token and sign in" }).click();
		await page.getByRole("alert").filter({ hasText: "A valid api_key" }).waitFor();
		await page.close();
	});

	test("an agent appears live when it registers", async () => {
		const { context, server, adminToken, registerAgent } = panel.get();
		const page = await openPanel(context, server.url, adminToken, "agents");
		await page.getByRole("heading", { name: /^Agents \(/ }).waitFor();
		await markDocument(page);
		const started = Date.now();
		await registerAgent("live-newcomer", ["task-execution", "live-cap"]);
		await page.getByRole("rowheader", { name: "live-newcomer" }).waitFor({ timeout: 4000 });
		expect(Date.now() - started).toBeLessThan(4000);
		expect(await stillSameDocument(page)).toBe(true);
		await page.close();
	});

	test("a pipeline created and executed in the panel: its stages turn completed live, no reload", async () => {
		const { context, server, adminToken, registerAgent } = panel.get();
		// Each stage takes a moment, so that the panel shows it running before it completes.
		await registerAgent("pipeline-worker", ["task-execution"], d => void setTimeout(() => complete({ stage: d.type })(d), 400), 4);
		const page = await openPanel(context, server.url, adminToken, "pipelines");
		await page.getByRole("button", { name: "Create" }).click();
		await page.getByRole("heading", { name: "Pipeline data-processing-pipeline" }).waitFor();
		await markDocument(page);
		await page.getByRole("button", { name: "Execute" }).click();
		await page.locator("svg.dag g[data-stage]").first().waitFor();
		const seen = await page.evaluate(
			() =>
				new Promise<string[]>(resolve => {
					const statuses = new Set<string>();
					const look = () => {
						const nodes = [...document.querySelectorAll("svg.dag g[data-stage]")];
						nodes.forEach(n => statuses.add(`${n.getAttribute("data-stage")}:${n.getAttribute("data-status")}`));
						if (nodes.length === 6 && nodes.every(n => n.getAttribute("data-status") === "completed")) resolve([...statuses]);
						else requestAnimationFrame(look);
					};
					look();
				})
		);
		expect(seen).toEqual(expect.arrayContaining(["0:running", "5:running", "5:completed"]));
		expect(await stillSameDocument(page)).toBe(true);
		await page.getByTestId("run-status").filter({ hasText: "completed" }).waitFor();
		// A stage's result on click.
		await page.getByRole("button", { name: /^Stage 5 output-generation completed/ }).click();
		await page.getByLabel("Result of stage output-generation").filter({ hasText: '"stage": "output"' }).waitFor();
		await screenshot(page, "pipeline-run");
		await page.close();
	});

	test("when the server drops the socket the panel says reconnecting, comes back and resyncs what it missed", async () => {
		const { context, server, adminToken, createTask } = panel.get();
		const page = await openPanel(context, server.url, adminToken, "tasks");
		await page.getByTestId("task-count").waitFor();
		await markDocument(page);
		// The realtime service goes away: every connection is closed and upgrades are refused.
		const realtime = server.broker.getLocalService("realtime") as Service;
		await server.broker.destroyService(realtime);
		await page.getByTestId("live-status").filter({ hasText: "reconnecting" }).waitFor();
		// Meanwhile a task is created: its event is missed.
		const missed = await createTask({ type: "missed-while-away", required_capabilities: ["nobody-has-this"] });
		await page.waitForTimeout(500);
		expect(await page.getByRole("link", { name: missed.task_id }).count()).toBe(0);
		await server.broker.createService(loadServiceSchema("realtime"));
		await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor({ timeout: 20_000 });
		await page.getByRole("link", { name: missed.task_id }).waitFor();
		expect(await stillSameDocument(page)).toBe(true);
		await page.close();
	});

	test("works under a path prefix behind a reverse proxy (REST and the socket through the proxy only)", async () => {
		const { context, server, adminToken, registerAgent } = panel.get();
		const proxy = await startPrefixProxy(server.url, "/mcp");
		try {
			const page = await context.newPage();
			const outside: string[] = [];
			page.on("request", r => void (!r.url().startsWith(proxy.url) && !r.url().startsWith("data:") && outside.push(r.url())));
			await page.goto(`${proxy.url}#token=${adminToken}`);
			await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor();
			await page.getByRole("link", { name: "Agents" }).click();
			await registerAgent("behind-proxy", ["task-execution"]);
			await page.getByRole("rowheader", { name: "behind-proxy" }).waitFor();
			expect(outside).toEqual([]);
			await page.close();
		} finally {
			await proxy.close();
		}
	});
});
