/**
 * The reference worker's data root on real files: every location a task names (data source, upstream
 * records_file / groups_file, output, spill files) must resolve inside it, after `..` and symlinks; anything
 * else fails with code PATH_OUTSIDE_DATA_ROOT, not retryable, and leaves the outside untouched.
 */
import { spawnSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { prepareDataRoot } from "../../agents/data-root";
import { executeStage, PATH_OUTSIDE_DATA_ROOT, StageInputError } from "../../agents/stage-worker";

const SAMPLE = path.join(__dirname, "../../examples/sample.csv");
const SECRET = "hunter2-do-not-leak";

type Json = Record<string, unknown>;

let base: string;
let root: string;
let outside: string;
let secretFile: string;
let reportFile: string;

beforeEach(async () => {
	base = await mkdtemp(path.join(os.tmpdir(), "data-root-"));
	root = path.join(base, "root");
	outside = path.join(base, "outside");
	await mkdir(root);
	await mkdir(outside);
	await copyFile(SAMPLE, path.join(root, "sample.csv"));
	secretFile = path.join(outside, "secret.csv");
	await writeFile(secretFile, `id,password\n1,${SECRET}\n`);
	reportFile = path.join(outside, "report.json");
	await writeFile(reportFile, "original\n");
});

afterEach(async () => {
	await rm(base, { recursive: true, force: true });
});

async function run(type: string, payload: Json): Promise<Json> {
	return JSON.parse(JSON.stringify(await executeStage(type, payload, { dataRoot: root }))) as Json;
}

/** What a file looks like from outside: a write through any route would change one of these. */
async function snapshot(dir: string): Promise<string> {
	const entries = await readdir(dir, { recursive: true });
	const files = await Promise.all(
		entries.sort().map(async (name) => {
			const info = await stat(path.join(dir, name));
			return `${name}:${info.isFile() ? await readFile(path.join(dir, name), "utf8") : "dir"}:${info.mtimeMs}`;
		})
	);
	return files.join("\n");
}

async function expectOutside(work: Promise<unknown>, location: string): Promise<void> {
	const error: unknown = await work.then(
		() => undefined,
		(err: unknown) => err
	);
	expect(error).toBeInstanceOf(StageInputError);
	expect(error).toMatchObject({ code: PATH_OUTSIDE_DATA_ROOT, retryable: false });
	const message = (error as Error).message;
	expect(message.startsWith(`${PATH_OUTSIDE_DATA_ROOT}: `)).toBe(true);
	expect(message).toContain(location);
	expect(message).not.toContain(SECRET);
	expect(message).not.toContain("root:x:0:0");
}

describe("reads outside the data root are refused", () => {
	it("refuses `..` escapes, relative and absolute", async () => {
		const before = await snapshot(outside);
		await expectOutside(run("data-ingestion", { data_source: "../outside/secret.csv" }), "../outside/secret.csv");
		const dotted = `${root}/../outside/secret.csv`;
		await expectOutside(run("data-ingestion", { input_data: { source: dotted } }), dotted);
		await expectOutside(run("data-ingestion", { data_source: `file://${root}/sub/../../outside/secret.csv` }), "secret.csv");
		expect(await snapshot(outside)).toBe(before);
	});

	it("refuses an absolute path outside and file:///etc/passwd", async () => {
		await expectOutside(run("data-ingestion", { data_source: secretFile }), secretFile);
		await expectOutside(run("data-ingestion", { data_source: "file:///etc/passwd" }), "file:///etc/passwd");
		// Every stage reads its source the same way, not only ingestion.
		await expectOutside(run("validation", { data_source: "file:///etc/passwd" }), "file:///etc/passwd");
	});

	it("refuses a symlink inside the root that leads out, to a file or through a folder", async () => {
		await symlink(secretFile, path.join(root, "innocent.csv"));
		await symlink(outside, path.join(root, "shared"));
		await expectOutside(run("data-ingestion", { data_source: "innocent.csv" }), "innocent.csv");
		await expectOutside(run("data-ingestion", { data_source: "shared/secret.csv" }), "shared/secret.csv");
	});

	it("refuses an upstream records_file or groups_file outside the root", async () => {
		const rows = path.join(outside, "rows.json");
		await writeFile(rows, JSON.stringify([{ password: SECRET }]));
		const records_file = pathToFileURL(rows).href;
		await expectOutside(
			run("analysis", { upstream: { t: { index: 0, type: "transformation", result: { records_file, columns: ["password"] } } } }),
			records_file
		);
		await expectOutside(
			run("output", {
				parameters: { output: "out.json" },
				upstream: { p: { index: 0, type: "processing", result: { groups_file: rows, columns: ["password"] } } }
			}),
			rows
		);
		await expect(stat(path.join(root, "out.json"))).rejects.toMatchObject({ code: "ENOENT" });
	});
});

describe("writes outside the data root are refused", () => {
	it("refuses an output path outside, absolute or by `..`, and writes nothing there", async () => {
		const before = await snapshot(outside);
		await expectOutside(run("output", { data_source: "sample.csv", parameters: { output: reportFile } }), reportFile);
		await expectOutside(run("output", { data_source: "sample.csv", parameters: { output: "../outside/new.json" } }), "../outside/new.json");
		await expectOutside(run("output", { data_source: "sample.csv", input_data: { output: "file:///etc/mcp-report.json" } }), "/etc/mcp-report.json");
		expect(await snapshot(outside)).toBe(before);
	});

	it("refuses an output name that is a symlink leading out, and one through a linked folder", async () => {
		await symlink(reportFile, path.join(root, "report.json"));
		await symlink(path.join(outside, "missing.json"), path.join(root, "dangling.json"));
		await symlink(outside, path.join(root, "shared"));
		const before = await snapshot(outside);
		for (const output of ["report.json", "dangling.json", "shared/new.json", "shared/deeper/new.json"]) {
			await expectOutside(run("output", { data_source: "sample.csv", parameters: { output } }), output);
		}
		// Not even the missing folder was made through the link, nor a temporary file left behind.
		expect(await snapshot(outside)).toBe(before);
		expect(await readFile(reportFile, "utf8")).toBe("original\n");
	});

	it("never spills rows outside: beside an outside output is refused, and without an output they stay in the root", async () => {
		const before = await snapshot(outside);
		await expectOutside(
			run("transformation", { data_source: "sample.csv", parameters: { max_inline_records: 1, output: reportFile } }),
			reportFile
		);
		expect(await snapshot(outside)).toBe(before);

		const rows = Array.from({ length: 3 }, (_, i) => ({ n: i }));
		const result = await run("transformation", { records: rows, parameters: { max_inline_records: 1 } });
		const spilled = new URL(String(result.records_file)).pathname;
		expect(path.dirname(spilled)).toBe(root);
		expect(JSON.parse(await readFile(spilled, "utf8"))).toHaveLength(3);
	});
});

describe("inside the data root", () => {
	it("reads relative paths, file:// URLs, tidy `..` and links that stay inside", async () => {
		await symlink(path.join(root, "sample.csv"), path.join(root, "alias.csv"));
		for (const source of ["sample.csv", `file://${root}/sample.csv`, "sub/../sample.csv", "alias.csv"]) {
			expect(await run("data-ingestion", { data_source: source })).toMatchObject({ count: 30 });
		}
	});

	it("writes into new folders and through a link to a file inside", async () => {
		const results = await run("output", { data_source: "sample.csv", parameters: { output: "reports/2024/out.csv" } });
		expect(results).toMatchObject({ format: "csv", output: pathToFileURL(path.join(root, "reports/2024/out.csv")).href });
		await writeFile(path.join(root, "latest.json"), "old");
		await symlink(path.join(root, "latest.json"), path.join(root, "current.json"));
		await run("output", { data_source: "sample.csv", parameters: { output: "current.json" } });
		expect(JSON.parse(await readFile(path.join(root, "latest.json"), "utf8"))).toMatchObject({ count: 30 });
	});

	it("refuses a FIFO as a data source instead of hanging on it", async () => {
		const fifo = path.join(root, "pipe.csv");
		if (spawnSync("mkfifo", [fifo]).status !== 0) return;
		await expect(run("data-ingestion", { data_source: "pipe.csv" })).rejects.toThrow(/pipe\.csv is not a regular file/);
	});

	it("reports where JSON is broken without quoting the file", async () => {
		await writeFile(path.join(root, "rows.jsonl"), `{"a":1}\n{"password": ${SECRET}}\n`);
		const error = (await run("data-ingestion", { data_source: "rows.jsonl" }).catch((err: unknown) => err)) as Error;
		expect(error.message).toMatch(/rows\.jsonl line 2 is not valid JSON/);
		expect(error.message).not.toContain(SECRET);

		await writeFile(path.join(root, "spilled.json"), `[\n  {"password": ${SECRET}}\n]`);
		const upstream = { t: { index: 0, type: "transformation", result: { records_file: "spilled.json" } } };
		const spilled = (await run("analysis", { upstream }).catch((err: unknown) => err)) as Error;
		expect(spilled).toBeInstanceOf(StageInputError);
		expect(spilled.message).toMatch(/records_file spilled\.json is not valid JSON/);
		expect(spilled.message).not.toContain(SECRET);
	});
});

describe("prepareDataRoot", () => {
	it("creates the root 0700 with the sample, and keeps a sample.csv the user changed", async () => {
		const fresh = path.join(base, "fresh", "agent-data");
		expect(await prepareDataRoot(fresh, SAMPLE)).toBe(true);
		expect((await stat(fresh)).mode & 0o777).toBe(0o700);
		expect(await readFile(path.join(fresh, "sample.csv"), "utf8")).toBe(await readFile(SAMPLE, "utf8"));

		await writeFile(path.join(fresh, "sample.csv"), "mine\n");
		expect(await prepareDataRoot(fresh, SAMPLE)).toBe(false);
		expect(await readFile(path.join(fresh, "sample.csv"), "utf8")).toBe("mine\n");
	});
});
