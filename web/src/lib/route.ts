/**
 * Hash routes (`#/tasks?status=failed`, `#/tasks/<id>`, `#/pipelines/<id>/runs/<run_id>`): the
 * server only ever serves `/`, so the panel works under any path prefix behind a proxy.
 */
export const VIEWS = ["overview", "agents", "tasks", "pipelines", "audit"] as const;
export type ViewName = (typeof VIEWS)[number];

export interface Route {
	view: ViewName;
	/** Path segments after the view, decoded. */
	parts: string[];
	query: URLSearchParams;
}

export function parseRoute(hash: string): Route {
	const body = hash.replace(/^#\/?/, "");
	const [path, search = ""] = body.split("?", 2);
	const segments = path.split("/").filter(Boolean).map(s => {
		try {
			return decodeURIComponent(s);
		} catch {
			return s;
		}
	});
	const view = (VIEWS as readonly string[]).includes(segments[0] ?? "") ? (segments[0] as ViewName) : "overview";
	return { view, parts: view === segments[0] ? segments.slice(1) : [], query: new URLSearchParams(search) };
}

/** `#/view/part/...?query` with every segment encoded; empty query values are left out. */
export function href(view: ViewName, parts: string[] = [], query: Record<string, string | undefined> = {}): string {
	const path = [view, ...parts].map(encodeURIComponent).join("/");
	const search = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => !!e[1])).toString();
	return `#/${path}${search ? `?${search}` : ""}`;
}
