/**
 * Who is signed in: the token in sessionStorage (gone with the tab), its decoded claims, and the
 * sign-in paths: `#token=<jwt>` in the address (removed from it at once) or the form.
 */
import { signal } from "@preact/signals";
import type { TokenResponse, UserRole } from "../../../src/types";
import { decodeToken, isExpired, type TokenClaims } from "./jwt";

const KEY = "mcp.token";

export interface Session extends TokenClaims {
	token: string;
}

export const session = signal<Session | null>(null);
/** Why the person was signed out, shown on the sign-in form. */
export const signOutReason = signal<string | null>(null);

/** Signs in with a token; returns why it was refused, or null. */
export function signIn(token: string): string | null {
	const trimmed = token.trim();
	const claims = decodeToken(trimmed);
	if (!claims) return "That is not a JWT.";
	if (isExpired(claims, Date.now())) return "That token has expired.";
	sessionStorage.setItem(KEY, trimmed);
	signOutReason.value = null;
	session.value = { token: trimmed, ...claims };
	return null;
}

export function signOut(reason: string | null = null): void {
	sessionStorage.removeItem(KEY);
	signOutReason.value = reason;
	session.value = null;
}

/**
 * On load: a `#token=` fragment wins (and leaves the address bar and history at once), else the
 * token kept in this tab.
 */
export function restoreSession(): void {
	const match = /^#token=([^&]+)/.exec(location.hash);
	if (match) {
		history.replaceState(null, "", location.pathname + location.search + "#/overview");
		const refused = signIn(decodeURIComponent(match[1]));
		if (refused) signOutReason.value = refused;
		return;
	}
	const kept = sessionStorage.getItem(KEY);
	if (kept && signIn(kept)) sessionStorage.removeItem(KEY);
}

/** Exchanges the API key for a token (POST /api/v1/auth/token) and signs in with it. */
export async function signInWithApiKey(apiKey: string, sub: string, role: UserRole): Promise<string | null> {
	const res = await fetch("api/v1/auth/token", {
		method: "POST",
		headers: { "Content-Type": "application/json" },
		body: JSON.stringify({ api_key: apiKey, sub, roles: [role], expires_in: 8 * 3600 })
	});
	const body = (await res.json().catch(() => null)) as (TokenResponse & { error?: { message: string } }) | null;
	if (!res.ok || !body?.token) return body?.error?.message ?? `The server refused (${res.status}).`;
	return signIn(body.token);
}
