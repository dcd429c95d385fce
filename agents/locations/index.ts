/**
 * The location registry: URL scheme → store, in the manner of the stage registry. A location without a scheme is a
 * path inside the data root; `file:` goes to the root as well; `s3:` to the operator's S3 store. A new store is
 * one module exporting a LocationParser and one line below.
 */
import type { DataRoot } from "../data-root";
import { StageInputError } from "../stage-error";
import { fileLocations, inRoot } from "./file";
import { s3Locations, type S3Settings } from "./s3";
import type { DataLocation, LocationParser } from "./types";

export type { DataLocation, OpenedSource, WriteResult } from "./types";
export { DEFAULT_MAX_OBJECT_BYTES } from "./types";
export type { S3Settings } from "./s3";

/** Two or more letters: a single letter before ":" is a Windows drive, not a scheme. */
function schemeOf(location: string): string | undefined {
	return /^([a-z][a-z0-9+.-]+):/i.exec(location.trim())?.[1]?.toLowerCase();
}

export class Locations {
	private readonly schemes: Readonly<Record<string, LocationParser>>;

	constructor(
		readonly root: DataRoot,
		s3: S3Settings = { forcePathStyle: false }
	) {
		this.schemes = { file: fileLocations(root), s3: s3Locations(s3) };
	}

	/** A location as a task names it → where it is; checked by name now, and by its store on every use. */
	resolve(location: string, what: string): DataLocation {
		const scheme = schemeOf(location) ?? "file";
		if (!Object.hasOwn(this.schemes, scheme)) {
			const known = Object.keys(this.schemes).map((name) => `${name}://`).join(" and ");
			throw new StageInputError(`unsupported ${what} scheme ${scheme}: (the reference worker reads ${known}): ${location.trim()}`);
		}
		return this.schemes[scheme](location, what);
	}

	/** A file directly in the data root. */
	inRoot(name: string): DataLocation {
		return inRoot(this.root, name);
	}
}
