/**
 * Browser tests of the web panel: a signed-in page, screenshots, axe, and a reverse proxy that
 * serves the gateway under a path prefix (as operators run it behind nginx or a cloud LB).
 */
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { AxeBuilder } from "@axe-core/playwright";
import type { BrowserContext, Page } from "playwright-core";

export const SCREENSHOTS = path.resolve(__dirname, "__screenshots__");

/** Opens the panel signed in through `#token=`, on `view`, and waits for the live connection. */
export async function openPanel(context: BrowserContext, base: string, token: string, view = "overview"): Promise<Page> {
	const page = await context.newPage();
	page.on("pageerror", err => console.error(`page error: ${err.message}`));
	await page.goto(`${base}/#token=${encodeURIComponent(token)}`);
	await page.getByTestId("live-status").filter({ hasText: "live" }).waitFor();
	if (view !== "overview") await page.evaluate(v => (location.hash = `#/${v}`), view);
	return page;
}

export async function screenshot(page: Page, name: string): Promise<string> {
	fs.mkdirSync(SCREENSHOTS, { recursive: true });
	const file = path.join(SCREENSHOTS, `${name}.png`);
	await page.screenshot({ path: file, fullPage: true });
	return file;
}

/** axe's serious and critical findings on the page as it is now (id and the first targets of each). */
export async function seriousViolations(page: Page): Promise<string[]> {
	const { violations } = await new AxeBuilder({ page }).analyze();
	return violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => `${v.id}: ${v.help} (${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | ")})`);
}

export interface PrefixProxy {
	/** The panel's address through the proxy, ending in the prefix and a slash. */
	url: string;
	close(): Promise<void>;
}

/** A reverse proxy that maps `<prefix>/…` to the gateway's `/…`, HTTP and WebSocket upgrades alike; anything else is 404. */
export async function startPrefixProxy(target: string, prefix: string): Promise<PrefixProxy> {
	const upstream = new URL(target);
	const strip = (url = "/") => (url.startsWith(`${prefix}/`) ? url.slice(prefix.length) : null);
	const server = http.createServer((req, res) => {
		const rest = strip(req.url);
		if (rest === null) return void res.writeHead(404).end();
		const forward = http.request(
			{ host: upstream.hostname, port: upstream.port, path: rest, method: req.method, headers: { ...req.headers, "x-forwarded-prefix": prefix } },
			answer => {
				res.writeHead(answer.statusCode ?? 502, answer.headers);
				answer.pipe(res);
			}
		);
		forward.on("error", () => res.writeHead(502).end());
		req.pipe(forward);
	});
	const tunnels = new Set<net.Socket>();
	server.on("upgrade", (req, socket, head) => {
		const rest = strip(req.url);
		if (rest === null) return socket.destroy();
		tunnels.add(socket as net.Socket);
		socket.on("close", () => tunnels.delete(socket as net.Socket));
		const back = net.connect(Number(upstream.port), upstream.hostname, () => {
			const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\r\n");
			back.write(`${req.method} ${rest} HTTP/1.1\r\n${headers}\r\n\r\n`);
			back.write(head);
			back.pipe(socket);
			socket.pipe(back);
		});
		const end = () => {
			back.destroy();
			socket.destroy();
		};
		back.on("error", end);
		socket.on("error", end);
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	return {
		url: `http://127.0.0.1:${port}${prefix}/`,
		close: () => new Promise(resolve => {
			for (const socket of tunnels) socket.destroy();
			server.closeAllConnections();
			server.close(() => resolve());
		})
	};
}
