/** Audit (admins): every mutating call, who, what, when and how it ended, with filters and paging. */
import type { AuditEntry } from "../../../src/types";
import { Badge, Notice, Section } from "../components/common";
import { get } from "../lib/api";
import type { AuditPage } from "../lib/api-types";
import { href, type Route } from "../lib/route";
import { useResource } from "../lib/use-resource";

const LIMIT = 100;
const FIELDS = ["actor", "action", "result", "since"] as const;
type AuditFilter = Partial<Record<(typeof FIELDS)[number], string>>;

function parse(query: URLSearchParams): AuditFilter & { offset: number } {
	const filter: AuditFilter = {};
	for (const key of FIELDS) {
		const v = query.get(key)?.trim();
		if (v) filter[key] = v;
	}
	return { ...filter, offset: Math.max(0, Number(query.get("offset")) || 0) };
}

function Row({ e }: { e: AuditEntry }) {
	return (
		<tr>
			<td><time dateTime={e.timestamp}>{new Date(e.timestamp).toLocaleString()}</time></td>
			<td>{e.actor}</td>
			<td>{e.action}</td>
			<td><code>{e.method} {e.path}</code></td>
			<td>{e.target ?? "—"}</td>
			<td><Badge status={e.result} /> {e.status}</td>
		</tr>
	);
}

export function AuditView({ route }: { route: Route }) {
	const { offset, ...filter } = parse(route.query);
	const since = filter.since ? new Date(filter.since).toISOString() : undefined;
	const key = JSON.stringify({ ...filter, offset });
	const page = useResource(`audit:${key}`, () => get<AuditPage>("/audit", { ...filter, since, limit: LIMIT, offset }));
	const go = (next: AuditFilter & { offset?: number }) => (location.hash = href("audit", [], { ...next, offset: next.offset ? String(next.offset) : undefined }));
	const submit = (e: Event) => {
		e.preventDefault();
		const data = new FormData(e.currentTarget as HTMLFormElement);
		go(Object.fromEntries(FIELDS.map(k => [k, String(data.get(k) ?? "") || undefined])));
	};
	const total = page.data?.total ?? 0;
	return (
		<Section title="Audit log">
			<form class="filters" aria-label="Filter the audit log" onSubmit={submit}>
				<label>Actor <input name="actor" defaultValue={filter.actor} /></label>
				<label>Action <input name="action" defaultValue={filter.action} placeholder="e.g. tasks.cancel" /></label>
				<label>
					Result
					<select name="result" defaultValue={filter.result ?? ""}>
						<option value="">any</option>
						<option value="success">success</option>
						<option value="failure">failure</option>
					</select>
				</label>
				<label>Since <input name="since" type="datetime-local" defaultValue={filter.since} /></label>
				<button type="submit">Apply</button>
			</form>
			{page.error && <Notice kind="error">{page.error}</Notice>}
			<p class="muted" role="status">{page.data ? `${total} entries${total > LIMIT ? `, ${offset + 1}–${Math.min(total, offset + LIMIT)} shown` : ""}` : "Loading…"}</p>
			<div class="scroll-x" tabIndex={0} role="region" aria-label="Audit entries">
				<table>
					<thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Request</th><th scope="col">Target</th><th scope="col">Result</th></tr></thead>
					<tbody>{page.data?.entries.map(e => <Row key={e.id} e={e} />)}</tbody>
				</table>
			</div>
			<nav class="pager" aria-label="Audit pages">
				<button type="button" disabled={offset === 0} onClick={() => go({ ...filter, offset: Math.max(0, offset - LIMIT) })}>Newer</button>
				<button type="button" disabled={offset + LIMIT >= total} onClick={() => go({ ...filter, offset: offset + LIMIT })}>Older</button>
			</nav>
		</Section>
	);
}
