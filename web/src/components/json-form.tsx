/** A labelled JSON editor with one submit button: parses before it sends, and says what the server answered. */
import { useState } from "preact/hooks";
import { errorText } from "../lib/api";

interface Props {
	label: string;
	initial: string;
	submit: string;
	rows?: number;
	onSubmit(value: unknown): Promise<string | void>;
}

export function JsonForm({ label, initial, submit, rows = 10, onSubmit }: Props) {
	const [text, setText] = useState(initial);
	const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
	const [busy, setBusy] = useState(false);
	const send = async (e: Event) => {
		e.preventDefault();
		let value: unknown;
		try {
			value = text.trim() ? JSON.parse(text) : {};
		} catch (err) {
			return setMessage({ ok: false, text: `Not valid JSON: ${(err as Error).message}` });
		}
		setBusy(true);
		try {
			const done = await onSubmit(value);
			setMessage(done ? { ok: true, text: done } : null);
		} catch (err) {
			setMessage({ ok: false, text: errorText(err) });
		} finally {
			setBusy(false);
		}
	};
	return (
		<form class="json-form" onSubmit={send}>
			<label>
				{label}
				<textarea rows={rows} spellcheck={false} value={text} onInput={e => setText((e.currentTarget as HTMLTextAreaElement).value)} />
			</label>
			<div>
				<button type="submit" disabled={busy}>{submit}</button>{" "}
				{message && <span class={message.ok ? "ok-text" : "error-text"} role={message.ok ? "status" : "alert"}>{message.text}</span>}
			</div>
		</form>
	);
}
