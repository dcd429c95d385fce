/** A small JSON HTTP client for tests: status, parsed body and headers of a real request. */
export interface HttpResult<T = any> {
	status: number;
	body: T;
	headers: Headers;
}

export interface RequestOptions {
	token?: string;
	body?: unknown;
	/** Sent as is (for malformed-JSON tests). */
	rawBody?: string;
	headers?: Record<string, string>;
}

export async function request<T = any>(base: string, method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult<T>> {
	const headers: Record<string, string> = { ...opts.headers };
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	let body: string | undefined;
	if (opts.rawBody !== undefined) body = opts.rawBody;
	else if (opts.body !== undefined) body = JSON.stringify(opts.body);
	if (body !== undefined) headers["Content-Type"] ??= "application/json";
	const res = await fetch(base + path, { method, headers, body });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		/* not JSON: keep the text */
	}
	return { status: res.status, body: parsed as T, headers: res.headers };
}

/** A client bound to one server and (optionally) one token. */
export function client(base: string, token?: string) {
	const call = (method: string) => (path: string, body?: unknown, headers?: Record<string, string>) =>
		request(base, method, path, { token, body, headers });
	return { get: call("GET"), post: call("POST"), delete: call("DELETE"), put: call("PUT") };
}

export async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
		await new Promise(r => setTimeout(r, intervalMs));
	}
}
