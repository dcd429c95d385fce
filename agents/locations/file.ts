/**
 * Local files, inside the agent's data root only: every check (real path after `..` and symlinks, no link as the
 * last name, regular files, atomic replacement) is DataRoot's, made again on each use.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { DataRoot } from "../data-root";
import { limitBytes, tooLarge } from "./byte-limit";
import type { DataLocation, LocationParser, OpenedSource, WriteResult } from "./types";

class FileLocation implements DataLocation {
	readonly href: string;
	readonly basename: string;

	constructor(
		private readonly root: DataRoot,
		readonly given: string,
		/** Absolute, inside the root by name (the disk is checked on use). */
		private readonly filePath: string
	) {
		this.href = pathToFileURL(filePath).href;
		this.basename = path.basename(filePath);
	}

	sibling(name: string): DataLocation {
		const filePath = path.join(path.dirname(this.filePath), name);
		return new FileLocation(this.root, filePath, this.root.locate(filePath, "file"));
	}

	async open(what: string, maxBytes: number): Promise<OpenedSource> {
		const { stream, size, version } = await this.root.openStream(this.given, what);
		if (size > maxBytes) {
			stream.destroy();
			throw tooLarge(what, this.given, maxBytes, size);
		}
		return { stream: limitBytes(stream, maxBytes, what, this.given), version };
	}

	async write(what: string, chunks: AsyncIterable<string>): Promise<WriteResult> {
		let bytes = 0;
		async function* counted(): AsyncGenerator<string> {
			for await (const chunk of chunks) {
				bytes += Buffer.byteLength(chunk, "utf8");
				yield chunk;
			}
		}
		await this.root.write(this.given, what, counted());
		return { bytes, parts: 1 };
	}
}

/** Paths (relative ones inside the root) and file:// URLs. */
export function fileLocations(root: DataRoot): LocationParser {
	return (location, what) => new FileLocation(root, location, root.locate(location, what));
}

/** A name in the root itself, for spills of a run that names no output. */
export function inRoot(root: DataRoot, name: string): DataLocation {
	return fileLocations(root)(path.join(root.dir, name), "file");
}
