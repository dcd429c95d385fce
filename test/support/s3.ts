/**
 * A real S3-compatible server for tests: s3rver (S3's REST API over files in a temp folder) on a free loopback
 * port, its buckets made through the API, and an SDK client of its own to put fixtures and read results back.
 * Every S3 notification it raises is kept, so a test can tell a multipart upload (ObjectCreated:Post, sent by
 * CompleteMultipartUpload) from a single PUT (ObjectCreated:Put). s3rver knows one credential, S3RVER/S3RVER;
 * it refuses any other access key id (InvalidAccessKeyId) but does not check SigV4 signatures.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client, type PutObjectCommandInput } from "@aws-sdk/client-s3";

interface S3rverInstance {
	run(): Promise<AddressInfo>;
	close(): Promise<void>;
	on(event: "event", listener: (event: { Records: { eventName: string; s3: { bucket: { name: string }; object: { key: string } } }[] }) => void): void;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface S3Event {
	name: string;
	bucket: string;
	key: string;
}

export interface TestS3 {
	endpoint: string;
	client: S3Client;
	/** Variables for an agent node that uses this server. */
	env: Record<string, string>;
	/** Every notification so far: ObjectCreated:Put, ObjectCreated:Post (a completed multipart upload), … */
	events: S3Event[];
	put(bucket: string, key: string, body: PutObjectCommandInput["Body"]): Promise<void>;
	getText(bucket: string, key: string): Promise<string>;
	stop(): Promise<void>;
}

/** The SDK's notice about the Node versions it supports (printed on a Node it plans to drop) is only noise in test output. */
const QUIET_SDK = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

export async function startS3(buckets: string[]): Promise<TestS3> {
	process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= QUIET_SDK.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const S3rver = require("s3rver") as S3rverClass;
	const directory = await mkdtemp(path.join(os.tmpdir(), "s3rver-"));
	const server = new S3rver({ address: "127.0.0.1", port: 0, directory, silent: true });
	const events: S3Event[] = [];
	server.on("event", (event) => {
		for (const record of event.Records) events.push({ name: record.eventName, bucket: record.s3.bucket.name, key: decodeURIComponent(record.s3.object.key) });
	});
	const { port } = await server.run();
	const endpoint = `http://127.0.0.1:${port}`;
	const client = new S3Client({ endpoint, forcePathStyle: true, region: "us-east-1", credentials: S3RVER_CREDENTIALS });
	for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
	return {
		endpoint,
		client,
		env: {
			AWS_ENDPOINT_URL_S3: endpoint,
			S3_FORCE_PATH_STYLE: "true",
			AWS_REGION: "us-east-1",
			AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
			AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
			...QUIET_SDK
		},
		events,
		async put(bucket, key, body) {
			await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
		},
		async getText(bucket, key) {
			const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
			return answer.Body ? answer.Body.transformToString() : "";
		},
		async stop() {
			client.destroy();
			await server.close();
			await rm(directory, { recursive: true, force: true });
		}
	};
}
