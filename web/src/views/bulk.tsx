/**
 * Bulk actions over the current filter: the server counts first (`dry_run`), the person confirms
 * that number, then the server acts and says how many it changed. Retry is over failed tasks.
 */
import { useState } from "preact/hooks";
import { errorText, post } from "../lib/api";
import type { BulkAction, BulkResult } from "../lib/api-types";
import { describeFilter, serverFilter, type ServerFilter, type TaskFilter } from "../lib/filters";
import { loadTasks } from "../store/tasks";

type Step =
	| { kind: "idle" }
	| { kind: "counting"; action: BulkAction }
	| { kind: "confirm"; action: BulkAction; filter: ServerFilter; matched: number }
	| { kind: "running"; action: BulkAction }
	| { kind: "done"; action: BulkAction; result: BulkResult }
	| { kind: "failed"; message: string };

const VERB: Record<BulkAction, { button: string; noun: (n: number) => string; past: string }> = {
	cancel: { button: "Cancel tasks…", noun: n => `Cancel ${n} task${n === 1 ? "" : "s"}`, past: "cancelled" },
	retry: { button: "Retry failed…", noun: n => `Retry ${n} failed`, past: "retried" }
};

/** What each action applies to: retry only ever re-runs failed tasks. */
function bulkFilter(action: BulkAction, filter: TaskFilter): ServerFilter {
	const base = serverFilter(filter);
	return action === "retry" ? { ...base, status: "failed" } : base;
}

const bulk = (action: BulkAction, filter: ServerFilter, dry_run: boolean) => post<BulkResult>("/tasks/bulk", { action, filter, dry_run });

export function BulkBar({ filter }: { filter: TaskFilter }) {
	const [step, setStep] = useState<Step>({ kind: "idle" });
	const count = async (action: BulkAction) => {
		setStep({ kind: "counting", action });
		const target = bulkFilter(action, filter);
		try {
			const { matched } = await bulk(action, target, true);
			setStep({ kind: "confirm", action, filter: target, matched });
		} catch (err) {
			setStep({ kind: "failed", message: errorText(err) });
		}
	};
	const run = async (action: BulkAction, target: ServerFilter) => {
		setStep({ kind: "running", action });
		try {
			const result = await bulk(action, target, false);
			setStep({ kind: "done", action, result });
			void loadTasks(filter, true);
		} catch (err) {
			setStep({ kind: "failed", message: errorText(err) });
		}
	};
	const busy = step.kind === "counting" || step.kind === "running";
	return (
		<div class="bulk" aria-label="Bulk actions" role="group">
			{step.kind !== "confirm" && (
				<>
					<button type="button" disabled={busy} onClick={() => count("cancel")}>{VERB.cancel.button}</button>
					<button type="button" disabled={busy} onClick={() => count("retry")}>{VERB.retry.button}</button>
				</>
			)}
			{busy && <span role="status">Asking the server…</span>}
			{step.kind === "confirm" && (
				<span class="confirm" role="alertdialog" aria-label="Confirm bulk action">
					<span data-testid="bulk-matched">
						{step.matched} task{step.matched === 1 ? "" : "s"} match ({describeFilter(step.filter)}).
					</span>
					<button type="button" class="danger" disabled={step.matched === 0} onClick={() => run(step.action, step.filter)} autoFocus>
						{VERB[step.action].noun(step.matched)}
					</button>
					<button type="button" onClick={() => setStep({ kind: "idle" })}>Back</button>
				</span>
			)}
			{step.kind === "done" && (
				<span role="status" data-testid="bulk-result">
					{step.result.changed} of {step.result.matched} {VERB[step.action].past}.
				</span>
			)}
			{step.kind === "failed" && <span role="alert" class="error-text">{step.message}</span>}
		</div>
	);
}
