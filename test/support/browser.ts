/**
 * A real headless Chromium for browser tests: Debian's `chromium` driven by playwright-core (never a
 * browser download). With CI=true a missing browser fails the suite; elsewhere the tests are skipped.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM_PATH);

/** `describe` when a browser is there (always under CI, where a missing one must fail), else `describe.skip`. */
export const describeBrowser = HAVE_CHROMIUM || process.env.CI === "true" ? describe : describe.skip;

const ARGS = [
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync"
];

/** A browser with a fresh profile (its own `--user-data-dir`), removed on close. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
	if (!HAVE_CHROMIUM) throw new Error(`no Chromium at ${CHROMIUM_PATH}: .ci/run installs Debian's chromium`);
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-chromium-"));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM_PATH,
		headless: true,
		args: ARGS,
		viewport: { width: 1360, height: 900 }
	});
	return {
		context,
		close: async () => {
			await context.close().catch(() => undefined);
			fs.rmSync(profile, { recursive: true, force: true });
		}
	};
}
