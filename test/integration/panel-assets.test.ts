/**
 * The built panel as the gateway serves it: within its size budget, with no external URL (it works
 * air-gapped), hashed assets cached for a year, index.html revalidated with a CSP, and the API's
 * own headers unchanged. Needs `npm run build` first (npm test runs it).
 */
import fs from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { PANEL_DIR } from "../../src/gateway/panel";
import { request } from "../support/http";
import { startServer, type TestServer } from "../support/server";

const ENTRY_BUDGET = 60 * 1024;
const TOTAL_BUDGET = 150 * 1024;
/** XML namespace names in the DOM library (createElementNS): identifiers, never fetched. */
const NAMESPACES = new Set(["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml", "http://www.w3.org/1998/Math/MathML", "http://www.w3.org/1999/xlink", "http://www.w3.org/XML/1998/namespace"]);

function built(): string[] {
	if (!fs.existsSync(path.join(PANEL_DIR, "index.html"))) throw new Error(`no panel build in ${PANEL_DIR}: run npm run build`);
	return fs.readdirSync(PANEL_DIR);
}

const gzipped = (file: string) => gzipSync(fs.readFileSync(path.join(PANEL_DIR, file)), { level: 9 }).length;

describe("the built panel", () => {
	test("stays within its budget: at most 60 KB gzip for the entry, 150 KB for everything", () => {
		const files = built();
		const html = fs.readFileSync(path.join(PANEL_DIR, "index.html"), "utf8");
		const entry = /<script type="module" src="\.\/([^"]+)"/.exec(html)?.[1];
		expect(entry && files).toContain(entry);
		const sizes = Object.fromEntries(files.map(f => [f, gzipped(f)]));
		const total = Object.values(sizes).reduce((a, b) => a + b, 0);
		console.log(`panel bundle (gzip): ${Object.entries(sizes).map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KB`).join(", ")}; total ${(total / 1024).toFixed(1)} KB`);
		expect(sizes[entry!]).toBeLessThanOrEqual(ENTRY_BUDGET);
		expect(total).toBeLessThanOrEqual(TOTAL_BUDGET);
	});

	test("names no external URL (no CDN, no web font): it works air-gapped", () => {
		const found = built().flatMap(f => [...fs.readFileSync(path.join(PANEL_DIR, f), "utf8").matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi)].map(m => `${f}: ${m[0]}`));
		expect(found.filter(hit => !NAMESPACES.has(hit.slice(hit.indexOf(": ") + 2)))).toEqual([]);
		// index.html refers to its assets relatively, so the panel works under any path prefix.
		const html = fs.readFileSync(path.join(PANEL_DIR, "index.html"), "utf8");
		expect([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map(m => m[1]).filter(u => !u.startsWith("./") && !u.startsWith("data:"))).toEqual([]);
	});

	test("asset names carry a content hash", () => {
		expect(built().filter(f => f !== "index.html" && !/-[A-Z0-9]{8}\.(js|css)$/.test(f))).toEqual([]);
	});
});

describe("the gateway serves the panel", () => {
	let server: TestServer;
	beforeAll(async () => {
		built();
		server = await startServer();
	});
	afterAll(() => server?.stop());

	test("GET / is the panel, never cached, with its CSP", async () => {
		const res = await request(server.url, "GET", "/");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		expect(res.headers.get("cache-control")).toBe("no-cache");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'self'");
		expect(csp).toContain("connect-src 'self' ws: wss:");
		expect(csp).toContain("frame-ancestors 'none'");
		expect(String(res.body)).toContain('<div id="app">');
	});

	test("hashed assets are cached for a year; the API keeps its own headers", async () => {
		const asset = built().find(f => f.endsWith(".js"))!;
		const res = await request(server.url, "GET", `/${asset}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
		expect(res.headers.get("content-type")).toMatch(/javascript/);
		const api = await request(server.url, "GET", "/api/v1/agents", { token: server.token(["viewer"]) });
		expect(api.status).toBe(200);
		expect(api.headers.get("cache-control")).toBe("no-store");
		expect(api.headers.get("content-security-policy")).toBeNull();
		// Unknown paths stay the JSON 404 they were.
		const missing = await request(server.url, "GET", "/no/such/file.js");
		expect(missing.status).toBe(404);
		expect(missing.body.error.code).toBe("NOT_FOUND");
		expect(missing.headers.get("cache-control")).toBe("no-store");
	});
});
