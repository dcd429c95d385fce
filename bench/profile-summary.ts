/**
 * `node dist/bench/profile-summary.js <file.cpuprofile> [top]`: where a V8 CPU profile's time went,
 * by self time per function and per package (or project folder), so a bench's profile can be
 * read without a browser and quoted in a note.
 */
import fs from "node:fs";

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	hitCount?: number;
	children?: number[];
}

interface Profile {
	nodes: ProfileNode[];
	startTime: number;
	endTime: number;
	samples: number[];
	timeDeltas: number[];
}

/** node_modules/<pkg> (or @scope/pkg), a project folder (dist/src/runtime), node: internals, or the V8 bucket. */
function placeOf(url: string, functionName: string): string {
	if (!url) return `(${functionName || "anonymous"})`;
	const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
	if (pkg) return pkg[1];
	if (url.startsWith("node:")) return url;
	const own = /\/dist\/(.*)\/[^/]+$/.exec(url);
	return own ? own[1] : url;
}

export function summarize(profile: Profile, top = 25): string[] {
	const byId = new Map(profile.nodes.map(n => [n.id, n]));
	const selfUs = new Map<number, number>();
	profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
	const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
	const byFunction = new Map<string, number>();
	const byPlace = new Map<string, number>();
	for (const [id, us] of selfUs) {
		const { callFrame } = byId.get(id)!;
		const file = callFrame.url.replace(/^.*\/(node_modules|dist)\//, "$1/");
		const fn = `${callFrame.functionName || "(anonymous)"} ${file}:${callFrame.lineNumber + 1}`;
		byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
		const place = placeOf(callFrame.url, callFrame.functionName);
		byPlace.set(place, (byPlace.get(place) ?? 0) + us);
	}
	// Inclusive: each sample counts once for every function on its stack (recursion counted once).
	const parent = new Map<number, number>();
	for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
	const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${n.callFrame.lineNumber + 1}`;
	const inclusive = new Map<string, number>();
	for (const [id, us] of selfUs) {
		const seen = new Set<string>();
		for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(keyOf(byId.get(at)!));
		for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + us);
	}
	const rank = (m: Map<string, number>) =>
		[...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
	const ownInclusive = new Map([...inclusive].filter(([key]) => / dist\//.test(key) || / node_modules\/moleculer(-web)?\//.test(key)));
	return [
		`${(total / 1e6).toFixed(2)} s sampled`,
		"", "self time by place:", ...rank(byPlace),
		"", "self time by function:", ...rank(byFunction),
		"", "inclusive time, project and moleculer functions:", ...rank(ownInclusive)
	];
}

if (require.main === module) {
	const [file, top] = process.argv.slice(2);
	console.log(summarize(JSON.parse(fs.readFileSync(file, "utf8")) as Profile, Number(top ?? 25)).join("\n"));
}
