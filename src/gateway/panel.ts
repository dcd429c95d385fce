/**
 * The web panel's static files: where the build puts them (`dist/web`, written by
 * scripts/build-web.ts) and how the gateway serves them. Asset names carry a content hash, so
 * they are cached for a year; `index.html` names the current ones and is revalidated every time.
 * The panel talks only to its own origin (REST and `/ws`), which its CSP says.
 */
import path from "node:path";
import type { ServerResponse } from "node:http";

/** The project's root, whether this file runs compiled (dist/src/gateway) or from source (src/gateway). */
export function projectRoot(): string {
	const up = path.resolve(__dirname, "../..");
	return path.basename(up) === "dist" ? path.dirname(up) : up;
}

export const PANEL_DIR = path.join(projectRoot(), "dist", "web");

export const PANEL_CSP = [
	"default-src 'self'",
	"connect-src 'self' ws: wss:",
	"img-src 'self' data:",
	"style-src 'self'",
	"script-src 'self'",
	"object-src 'none'",
	"base-uri 'self'",
	"form-action 'self'",
	"frame-ancestors 'none'"
].join("; ");

export const IMMUTABLE = "public, max-age=31536000, immutable";

function setPanelHeaders(res: ServerResponse, file: string): void {
	if (file.endsWith(".html")) {
		res.setHeader("Cache-Control", "no-cache");
		res.setHeader("Content-Security-Policy", PANEL_CSP);
		res.setHeader("Referrer-Policy", "no-referrer");
	} else res.setHeader("Cache-Control", IMMUTABLE);
}

/** moleculer-web's `assets` setting: serve-static over the build; what no route takes falls through to it. */
export const PANEL_ASSETS = {
	folder: PANEL_DIR,
	// The gateway sets `Cache-Control: no-store` on every answer first; `setPanelHeaders` decides for these.
	options: { index: "index.html", cacheControl: false, etag: true, fallthrough: true, redirect: false, setHeaders: setPanelHeaders }
};
