/** Small shared pieces: status badges, bars, ages, JSON, notices, action buttons with their outcome. */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { errorText } from "../lib/api";
import { now } from "../store/store";

export function Badge({ status }: { status: string }) {
	return <span class={`badge s-${status}`}>{status}</span>;
}

/** A share 0..1 as a bar with its percentage in words (for screen readers too). */
export function Meter({ value, label }: { value: number; label: string }) {
	const pct = Math.round(Math.max(0, Math.min(1, value)) * 100);
	return (
		<span class="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label={label}>
			<span class="meter-fill" style={{ width: `${pct}%` }} />
			<span class="meter-text">{pct}%</span>
		</span>
	);
}

export function formatDuration(ms: number): string {
	if (!Number.isFinite(ms) || ms < 0) return "—";
	const s = ms / 1000;
	if (s < 1) return `${Math.round(ms)} ms`;
	if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
	return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Time since `iso`, counting up every second. */
export function Age({ iso }: { iso: string | null }) {
	if (!iso) return <span>—</span>;
	const ms = now.value - Date.parse(iso);
	return <time dateTime={iso} title={iso}>{formatDuration(Math.max(0, ms))} ago</time>;
}

export function Json({ value, label }: { value: unknown; label: string }) {
	return (
		<pre class="json" tabIndex={0} aria-label={label}>
			{value === undefined ? "—" : JSON.stringify(value, null, 2)}
		</pre>
	);
}

export function Notice({ kind = "info", children }: { kind?: "info" | "error" | "ok"; children: ComponentChildren }) {
	return (
		<p class={`notice ${kind}`} role={kind === "error" ? "alert" : "status"}>
			{children}
		</p>
	);
}

/**
 * A button whose action calls the server: disabled while it runs, then says why if it failed.
 * `confirm` asks first (in words that name what will change).
 */
export function ActionButton(props: { label: string; run: () => Promise<unknown>; confirm?: string; danger?: boolean }) {
	const [state, setState] = useState<{ busy: boolean; message: string | null; failed: boolean }>({ busy: false, message: null, failed: false });
	const click = async () => {
		if (props.confirm && !window.confirm(props.confirm)) return;
		setState({ busy: true, message: null, failed: false });
		try {
			await props.run();
			setState({ busy: false, message: null, failed: false });
		} catch (err) {
			setState({ busy: false, message: errorText(err), failed: true });
		}
	};
	return (
		<span class="action">
			<button type="button" class={props.danger ? "danger" : undefined} disabled={state.busy} onClick={click}>
				{props.label}
			</button>
			{state.message && <span class={state.failed ? "error-text" : "ok-text"} role={state.failed ? "alert" : "status"}>{state.message}</span>}
		</span>
	);
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
	return (
		<section class="card" aria-label={title}>
			<header class="card-head">
				<h2>{title}</h2>
				{actions && <div class="card-actions">{actions}</div>}
			</header>
			{children}
		</section>
	);
}
