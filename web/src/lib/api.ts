/**
 * REST calls, by relative URL (`api/v1/...` resolved against the page), so the panel works under
 * any path prefix. A 401 signs out: the token expired or was revoked.
 */
import type { ErrorBody } from "../../../src/types";
import { session, signOut } from "./session";

export class ApiFailure extends Error {
	constructor(readonly status: number, readonly code: string, message: string) {
		super(message);
		this.name = "ApiFailure";
	}
}

export type Query = Record<string, string | number | undefined>;

export function withQuery(path: string, query: Query = {}): string {
	const entries = Object.entries(query).filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => [k, String(v)]);
	return entries.length ? `${path}?${new URLSearchParams(entries)}` : path;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
	const headers: Record<string, string> = { Accept: "application/json" };
	const token = session.value?.token;
	if (token) headers.Authorization = `Bearer ${token}`;
	if (body !== undefined) headers["Content-Type"] = "application/json";
	const res = await fetch(`api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
	const text = await res.text();
	let parsed: unknown = null;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		parsed = text;
	}
	if (!res.ok) {
		const error = (parsed as ErrorBody | null)?.error;
		if (res.status === 401 && token) signOut("Your session ended: sign in again.");
		throw new ApiFailure(res.status, error?.code ?? "HTTP_" + res.status, error?.message ?? res.statusText);
	}
	return parsed as T;
}

export const get = <T>(path: string, query?: Query) => api<T>("GET", withQuery(path, query));
export const post = <T>(path: string, body: unknown = {}) => api<T>("POST", path, body);
export const del = <T>(path: string) => api<T>("DELETE", path);

/** A message for the person: the server's words when it gave some. */
export function errorText(err: unknown): string {
	if (err instanceof ApiFailure) return `${err.message} (${err.status})`;
	return err instanceof Error ? err.message : String(err);
}
