/**
 * The agent's data root: the one folder whose files the reference worker reads and writes. Tasks name locations
 * (file:// URLs or paths; a relative path is taken inside the root) and each is checked on its real path, after
 * `..` and symlinks are resolved, so neither a crafted path nor a link inside the root reaches the rest of the
 * host. Anything else fails the task non-retryably with code PATH_OUTSIDE_DATA_ROOT.
 */
import type { StageErrorCode } from "../src/stage-contract";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, lstat, mkdir, open, readlink, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { StageInputError } from "./stage-error";

export const PATH_OUTSIDE_DATA_ROOT: StageErrorCode = "PATH_OUTSIDE_DATA_ROOT";

/** Names the location as the task gave it, never the real path it resolved to nor anything read from it. */
function outside(location: string, what: string): StageInputError {
	return new StageInputError(`${PATH_OUTSIDE_DATA_ROOT}: ${what} ${location} is outside the agent's data root`, PATH_OUTSIDE_DATA_ROOT);
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

function isInside(child: string, parent: string): boolean {
	return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/**
 * A file:// URL or a path → an absolute path (relative ones against `base`). Other schemes are refused by name,
 * since the reference worker reads local files only and would otherwise report a confusing "does not exist".
 */
function parseLocation(location: string, what: string, base: string): string {
	const trimmed = location.trim();
	if (trimmed === "") throw new StageInputError(`${what} is empty`);
	if (trimmed.includes("\0")) throw new StageInputError(`${what} contains a NUL character`);
	// Two or more letters: a single letter before ":" is a Windows drive, not a scheme.
	const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(trimmed)?.[1]?.toLowerCase();
	if (scheme === "file") {
		try {
			return fileURLToPath(trimmed);
		} catch (err) {
			throw new StageInputError(`${what} ${trimmed} is not a valid file:// URL: ${(err as Error).message}`);
		}
	}
	if (scheme !== undefined) {
		throw new StageInputError(`unsupported ${what} scheme ${scheme}: (a data root holds file:// locations only): ${trimmed}`);
	}
	return path.resolve(base, trimmed);
}

async function exists(filePath: string): Promise<boolean> {
	try {
		await stat(filePath);
		return true;
	} catch (err) {
		if (errno(err) === "ENOENT") return false;
		throw err;
	}
}

export class DataRoot {
	private constructor(
		/** As configured (absolute): relative locations are joined to it. */
		readonly dir: string,
		/** Its real path, which every location must resolve inside. */
		readonly real: string
	) {}

	static async open(dir: string): Promise<DataRoot> {
		const absolute = path.resolve(dir);
		try {
			return new DataRoot(absolute, await realpath(absolute));
		} catch (err) {
			// A plain (retryable) error: a missing root is the host's problem, not the task's, and may be fixed.
			throw new Error(`the agent's data root ${absolute} is not usable (${errno(err) ?? (err as Error).message})`);
		}
	}

	/** A location as a task names it → an absolute path that is inside the root by name; the disk is checked on use. */
	locate(location: string, what: string): string {
		const filePath = parseLocation(location, what, this.dir);
		if (!isInside(filePath, this.dir) && !isInside(filePath, this.real)) throw outside(location, what);
		return filePath;
	}

	/**
	 * The file at `location` opened for reading, after every check: its real path is inside the root, the last name
	 * is no symlink, and it is a regular file. The stream closes the file when it ends or is destroyed.
	 */
	async openStream(location: string, what: string): Promise<{ stream: Readable; size: number; version: string }> {
		const filePath = this.locate(location, what);
		let real: string;
		try {
			real = await realpath(filePath);
		} catch (err) {
			throw this.readFailure(err, location, what);
		}
		if (!isInside(real, this.real)) throw outside(location, what);
		let handle: FileHandle;
		try {
			// O_NOFOLLOW: the last name cannot have become a link since realpath. O_NONBLOCK: a FIFO in the root
			// must not hang the open; it is refused below as not a regular file.
			handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
		} catch (err) {
			throw this.readFailure(err, location, what);
		}
		try {
			await this.confirmOpened(handle, location, what);
			const info = await handle.stat();
			if (!info.isFile()) throw new StageInputError(`${what} ${location} is not a regular file`);
			const version = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
			return { stream: handle.createReadStream(), size: info.size, version };
		} catch (err) {
			await handle.close();
			throw err;
		}
	}

	/**
	 * Replaces the file at `location` with `content` atomically (readers never see half a file: another stage may
	 * pick it up the moment this one reports), creating missing folders. Answers the path as located.
	 */
	async write(location: string, what: string, content: string | AsyncIterable<string>): Promise<string> {
		const filePath = this.locate(location, what);
		const folder = await this.ensureFolder(path.dirname(filePath), location, what);
		const target = await this.writableTarget(path.join(folder, path.basename(filePath)), location, what);
		const temp = `${target}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
		// O_EXCL with O_CREAT fails on anything already there, a planted symlink included: nothing is written through.
		const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
		try {
			try {
				await this.confirmOpened(handle, location, what);
				for await (const chunk of typeof content === "string" ? [content] : content) {
					const bytes = Buffer.from(chunk, "utf8");
					for (let at = 0; at < bytes.length; ) at += (await handle.write(bytes, at)).bytesWritten;
				}
			} finally {
				await handle.close();
			}
			await rename(temp, target);
		} catch (err) {
			await unlink(temp).catch(() => undefined);
			throw err;
		}
		return filePath;
	}

	/**
	 * Narrows the race between checking a path and opening it: had a folder on the way been swapped for a symlink
	 * in between, the open landed elsewhere, so the opened file's own path (Linux: /proc/self/fd) is checked too.
	 * Without /proc the check before the open is all there is.
	 */
	private async confirmOpened(handle: FileHandle, location: string, what: string): Promise<void> {
		let actual: string;
		try {
			actual = await readlink(`/proc/self/fd/${handle.fd}`);
		} catch {
			return;
		}
		if (!isInside(actual, this.real)) throw outside(location, what);
	}

	/** The real folder a file goes in, made when missing; refused, before anything is made, when it leads outside. */
	private async ensureFolder(folder: string, location: string, what: string): Promise<string> {
		// mkdir creates below the nearest existing ancestor, so that one decides where new folders would appear.
		let existing = folder;
		while (!(await exists(existing))) {
			const parent = path.dirname(existing);
			if (parent === existing) break;
			existing = parent;
		}
		if (!isInside(await realpath(existing), this.real)) throw outside(location, what);
		if (existing !== folder) await mkdir(folder, { recursive: true });
		const real = await realpath(folder);
		if (!isInside(real, this.real)) throw outside(location, what);
		return real;
	}

	/** A symlink as the last name is followed only to a file inside the root; a dangling one leads nowhere checked. */
	private async writableTarget(target: string, location: string, what: string): Promise<string> {
		let entry;
		try {
			entry = await lstat(target);
		} catch (err) {
			if (errno(err) === "ENOENT") return target;
			throw err;
		}
		let resolved = target;
		if (entry.isSymbolicLink()) {
			const real = await realpath(target).catch(() => undefined);
			if (real === undefined || !isInside(real, this.real)) throw outside(location, what);
			resolved = real;
			entry = await stat(real);
		}
		if (!entry.isFile()) throw new StageInputError(`${what} ${location} is not a regular file`);
		return resolved;
	}

	private readFailure(err: unknown, location: string, what: string): Error {
		const code = errno(err);
		if (code === "ENOENT" || code === "ENOTDIR") return new StageInputError(`${what} ${location} does not exist`);
		// ELOOP under O_NOFOLLOW: the last name turned into a symlink after it was checked.
		if (code === "ELOOP") return outside(location, what);
		return new Error(`cannot read ${what} ${location} (${code ?? (err as Error).message})`);
	}
}

/**
 * On agent start: the root exists (made 0700, since it holds whatever the tasks bring) and, when it has no
 * sample.csv yet, gets the example data, so the README's first pipeline (`file://<root>/sample.csv`) runs as is.
 * Answers whether the sample was copied.
 */
export async function prepareDataRoot(dir: string, sample: string): Promise<boolean> {
	await mkdir(dir, { recursive: true, mode: 0o700 });
	try {
		// COPYFILE_EXCL: an existing sample.csv (or a link by that name) is the user's and stays.
		await copyFile(sample, path.join(dir, "sample.csv"), constants.COPYFILE_EXCL);
		return true;
	} catch (err) {
		if (errno(err) === "EEXIST" || errno(err) === "ENOENT") return false;
		throw err;
	}
}
