/**
 * Where the reference worker's data lives, whatever the store: a location is named by a task (a path or file://
 * URL inside the data root, or an s3://bucket/key URL), opened as a stream and replaced by writing chunks. The
 * stages never see a path or a bucket; each store keeps its own checks (agents/locations/file.ts, s3.ts).
 */
import type { Readable } from "node:stream";

/** The largest object (file or S3 object) a stage reads unless the task asks for less: 256 MiB. */
export const DEFAULT_MAX_OBJECT_BYTES = 256 * 1024 * 1024;

export interface OpenedSource {
	/** The object's bytes, streamed: nobody holds the whole object. Destroy it when stopping early. */
	stream: Readable;
	/** Changes whenever the content does (S3: ETag and version; a file: device, inode, size, mtime). */
	version: string;
}

export interface DataLocation {
	/** The store's name for it: `file:///abs/path` or `s3://bucket/key`. Results carry this. */
	readonly href: string;
	/** As the task named it, for messages (never the real path it resolved to, nor anything read from it). */
	readonly given: string;
	/** The last segment, `data.csv`: formats and derived names come from it. */
	readonly basename: string;
	/** Another location in the same folder (under the same key prefix). */
	sibling(name: string): DataLocation;
	/** Refuses an object over `maxBytes` before reading it, or as soon as the stream passes it. */
	open(what: string, maxBytes: number): Promise<OpenedSource>;
	/** Replaces the object with `chunks`; readers never see half of it. */
	write(what: string, chunks: AsyncIterable<string>): Promise<WriteResult>;
}

export interface WriteResult {
	bytes: number;
	/** How many parts the object went up in: 1 is a single write (always, for a file). */
	parts: number;
}

/** A store: turns a location of its scheme into a DataLocation (checked by name now, on the store when used). */
export type LocationParser = (location: string, what: string) => DataLocation;
