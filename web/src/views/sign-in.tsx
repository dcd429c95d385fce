/** Sign in: paste a token, or exchange the API key for a viewer or operator token. */
import { useState } from "preact/hooks";
import type { UserRole } from "../../../src/types";
import { Notice } from "../components/common";
import { signIn, signInWithApiKey, signOutReason } from "../lib/session";

export function SignIn() {
	const [error, setError] = useState<string | null>(null);
	const withToken = (e: Event) => {
		e.preventDefault();
		const data = new FormData(e.currentTarget as HTMLFormElement);
		setError(signIn(String(data.get("token") ?? "")));
	};
	const withKey = async (e: Event) => {
		e.preventDefault();
		const data = new FormData(e.currentTarget as HTMLFormElement);
		setError(await signInWithApiKey(String(data.get("api_key") ?? ""), String(data.get("sub") ?? "") || "panel-user", String(data.get("role")) as UserRole));
	};
	return (
		<main class="sign-in" id="main">
			<h1>MCP Server</h1>
			{signOutReason.value && <Notice kind="error">{signOutReason.value}</Notice>}
			{error && <Notice kind="error">{error}</Notice>}
			<form class="card" onSubmit={withToken} aria-labelledby="with-token">
				<h2 id="with-token">Sign in with a token</h2>
				<label>
					Access token (JWT)
					<textarea name="token" rows={4} required spellcheck={false} autoComplete="off" />
				</label>
				<button type="submit">Sign in</button>
			</form>
			<form class="card" onSubmit={withKey} aria-labelledby="with-key">
				<h2 id="with-key">Or with the API key</h2>
				<label>API key <input name="api_key" type="password" required autoComplete="off" /></label>
				<label>Your name <input name="sub" autoComplete="username" placeholder="panel-user" /></label>
				<label>
					Role
					<select name="role" defaultValue="viewer">
						<option value="viewer">viewer (read only)</option>
						<option value="operator">operator</option>
					</select>
				</label>
				<button type="submit">Get a token and sign in</button>
			</form>
			<p class="muted">In development the server logs a link that signs you in as admin: <code>Panel: …/#token=…</code></p>
		</main>
	);
}
