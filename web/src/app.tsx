/** The shell: views as tabs, the live indicator, who is signed in; the one live connection for the session. */
import { signal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { Notice } from "./components/common";
import { parseRoute, href, VIEWS, type ViewName } from "./lib/route";
import { session, signOut } from "./lib/session";
import { LiveConnection, liveStatus, liveUrl } from "./store/live";
import { handleLive, loadError, onLive, onResync, resyncAll } from "./store/store";
import { markTasksStale, queueTaskUpdate } from "./store/tasks";
import { AgentsView } from "./views/agents";
import { AuditView } from "./views/audit";
import { OverviewView } from "./views/overview";
import { PipelinesView } from "./views/pipelines";
import { isAdmin } from "./views/roles";
import { SignIn } from "./views/sign-in";
import { TasksView } from "./views/tasks";

const route = signal(parseRoute(location.hash));
addEventListener("hashchange", () => (route.value = parseRoute(location.hash)));

// The task rows follow events on every view; a resync makes them stale (fetched again when shown).
onLive(m => m.type === "task_update" && queueTaskUpdate(m));
onResync(markTasksStale);

const TITLES: Record<ViewName, string> = { overview: "Overview", agents: "Agents", tasks: "Tasks", pipelines: "Pipelines", audit: "Audit" };

function useLiveConnection(token: string): void {
	useEffect(() => {
		const connection = new LiveConnection(liveUrl(location), token, { onMessage: handleLive, onResync: resyncAll });
		connection.start();
		resyncAll();
		return () => connection.stop();
	}, [token]);
}

function LiveIndicator() {
	const status = liveStatus.value;
	const text = status === "live" ? "live" : status === "connecting" ? "connecting" : "reconnecting";
	return (
		<span class={`live live-${status}`} role="status" aria-live="polite" data-testid="live-status">
			<span class="dot" aria-hidden="true" />
			{text}
		</span>
	);
}

function View({ name }: { name: ViewName }) {
	const r = route.value;
	switch (name) {
		case "overview":
			return <OverviewView />;
		case "agents":
			return <AgentsView />;
		case "tasks":
			return <TasksView route={r} />;
		case "pipelines":
			return <PipelinesView route={r} />;
		case "audit":
			return isAdmin() ? <AuditView route={r} /> : <Notice kind="error">The audit log is for admins.</Notice>;
	}
}

function Shell({ token }: { token: string }) {
	useLiveConnection(token);
	const current = route.value.view;
	const who = session.value!;
	useEffect(() => void (document.title = `${TITLES[current]} · MCP Server`), [current]);
	return (
		<>
			<a class="skip" href="#main" onClick={e => (e.preventDefault(), document.getElementById("main")?.focus())}>Skip to content</a>
			<header class="top">
				<strong class="brand">MCP Server</strong>
				<nav aria-label="Views">
					<ul>
						{VIEWS.filter(v => v !== "audit" || isAdmin()).map(v => (
							<li key={v}>
								<a href={href(v)} aria-current={current === v ? "page" : undefined}>{TITLES[v]}</a>
							</li>
						))}
					</ul>
				</nav>
				<LiveIndicator />
				<span class="who">
					{who.sub} <span class="muted">({who.roles.join(", ") || "no role"})</span>
				</span>
				<button type="button" onClick={() => signOut()}>Sign out</button>
			</header>
			<main id="main" tabIndex={-1}>
				<h1 class="sr-only">{TITLES[current]}</h1>
				{loadError.value && <Notice kind="error">{loadError.value}</Notice>}
				<View name={current} />
			</main>
		</>
	);
}

export function App() {
	const current = session.value;
	return current ? <Shell token={current.token} /> : <SignIn />;
}
