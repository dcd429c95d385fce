/**
 * What each panel test file starts with: a real server (every service, the built panel), a browser,
 * tokens, REST helpers, and outside HTTP agents registered the way a real one registers.
 */
import type { BrowserContext } from "playwright-core";
import type { Agent, Task, TaskSubmission } from "../../src/types";
import { launchBrowser } from "../support/browser";
import { TEST_SECRETS } from "../support/broker";
import { startHttpAgent, type AgentScript, type HttpAgent } from "../support/http-agent";
import { client } from "../support/http";
import { startServer, type TestServer } from "../support/server";

/** The browser makes many calls; the panel tests are about the panel, not the rate limiter. */
export const PANEL_ENV = { RATE_LIMIT_PER_MINUTE: "1000000" };

export interface PanelFixture {
	server: TestServer;
	context: BrowserContext;
	adminToken: string;
	admin: ReturnType<typeof client>;
	agents: HttpAgent[];
	/** Registers an outside HTTP agent (as a real one would, with the API key). */
	registerAgent(name: string, capabilities: string[], script?: AgentScript, cpu?: number): Promise<Agent>;
	createTask(submission: TaskSubmission): Promise<Task>;
}

export function panelFixture(env: Record<string, string> = {}): { get(): PanelFixture; setup(): Promise<void>; teardown(): Promise<void> } {
	let fixture: PanelFixture | null = null;
	let closeBrowser: (() => Promise<void>) | null = null;
	return {
		get: () => {
			if (!fixture) throw new Error("the panel fixture is not set up");
			return fixture;
		},
		async setup() {
			const server = await startServer({ ...PANEL_ENV, ...env });
			const browser = await launchBrowser();
			closeBrowser = browser.close;
			const adminToken = server.token(["admin"], "panel-admin");
			const admin = client(server.url, adminToken);
			const agents: HttpAgent[] = [];
			fixture = {
				server,
				context: browser.context,
				adminToken,
				admin,
				agents,
				async registerAgent(name, capabilities, script, cpu = 2) {
					const agent = await startHttpAgent();
					if (script) agent.script = script;
					agents.push(agent);
					const res = await client(server.url).post(
						"/api/v1/agents/register",
						{ name, type: "worker", capabilities, endpoints: { task: agent.endpoints.task }, resources: { cpu } },
						{ "X-API-Key": TEST_SECRETS.API_KEY }
					);
					if (res.status !== 201) throw new Error(`registration refused: ${res.status} ${JSON.stringify(res.body)}`);
					return res.body as Agent;
				},
				async createTask(submission) {
					const res = await admin.post("/api/v1/tasks", submission);
					if (res.status !== 201) throw new Error(`task refused: ${res.status} ${JSON.stringify(res.body)}`);
					return res.body as Task;
				}
			};
		},
		async teardown() {
			await closeBrowser?.();
			if (fixture) {
				for (const agent of fixture.agents) await agent.close();
				await fixture.server.stop();
			}
			fixture = null;
		}
	};
}
