/**
 * Builds the web panel (web/) into dist/web: one ES module entry plus lazily loaded chunks (charts,
 * DAG layout), CSS, and an index.html that names them by relative URL, so the panel works under
 * any path prefix. Every asset name carries a content hash (the gateway caches them for a year).
 */
import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { PANEL_DIR, projectRoot } from "../src/gateway/panel";

export async function buildPanel(outDir = PANEL_DIR): Promise<string[]> {
	const webDir = path.join(projectRoot(), "web");
	fs.rmSync(outDir, { recursive: true, force: true });
	const result = await build({
		absWorkingDir: webDir,
		entryPoints: { main: "src/main.tsx" },
		outdir: outDir,
		bundle: true,
		splitting: true,
		format: "esm",
		target: ["es2022"],
		minify: true,
		legalComments: "none",
		jsx: "automatic",
		jsxImportSource: "preact",
		entryNames: "[name]-[hash]",
		chunkNames: "[name]-[hash]",
		assetNames: "[name]-[hash]",
		metafile: true,
		logLevel: "warning",
		define: { "process.env.NODE_ENV": '"production"' }
	});
	const outputs = Object.entries(result.metafile.outputs);
	const entry = outputs.find(([, o]) => o.entryPoint === "src/main.tsx");
	if (!entry) throw new Error("esbuild wrote no entry");
	const script = path.basename(entry[0]);
	const css = entry[1].cssBundle ? path.basename(entry[1].cssBundle) : null;
	const template = fs.readFileSync(path.join(webDir, "index.html"), "utf8");
	const html = template
		.replace("<!--styles-->", css ? `<link rel="stylesheet" href="./${css}">` : "")
		.replace("<!--script-->", `<script type="module" src="./${script}"></script>`);
	fs.writeFileSync(path.join(outDir, "index.html"), html);
	return fs.readdirSync(outDir);
}

if (require.main === module) {
	buildPanel().then(
		files => console.log(`web panel: ${files.length} files in ${path.relative(process.cwd(), PANEL_DIR) || PANEL_DIR}`),
		err => {
			console.error(err);
			process.exit(1);
		}
	);
}
