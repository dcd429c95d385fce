#!/usr/bin/env bash
# Runs the spec's 6-stage pipeline on S3: puts examples/sample.csv at s3://$BUCKET/$PREFIX/data.csv (making the
# bucket when it is missing), runs examples/run-pipeline.sh from that s3:// source to an s3:// report beside it,
# and prints the report's location and its first lines, read back from the store.
#
# Any S3-compatible store works. For one on this machine, s3rver (a dev dependency; credential S3RVER/S3RVER):
#   npx s3rver --directory /tmp/s3rver --port 4568 --silent                       # terminal 0
#   export AWS_ENDPOINT_URL_S3=http://127.0.0.1:4568 S3_FORCE_PATH_STYLE=true AWS_REGION=us-east-1 \
#          AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER                   # in every terminal below
#   TRANSPORTER=TCP npm start                                                     # terminal 1
#   TRANSPORTER=TCP npm run agent                                                 # terminal 2: the agent reads these AWS_* too
#   export TOKEN=$(npm run --silent token -- --roles operator --sub demo)
#   bash examples/run-pipeline-s3.sh
# For AWS itself leave AWS_ENDPOINT_URL_S3 and S3_FORCE_PATH_STYLE unset and use a bucket of yours.
#
# Environment: TOKEN (required), BUCKET (default mcp-demo), PREFIX (default runs/<time>-<pid>), the AWS_* variables
# above (this script's own uploads and downloads use them too), and those of run-pipeline.sh (MCP_URL, TIMEOUT_S).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${TOKEN:?set TOKEN, e.g. export TOKEN=\$(npm run --silent token -- --roles operator --sub demo)}"
BUCKET="${BUCKET:-mcp-demo}"
PREFIX="${PREFIX:-runs/$(date +%Y%m%d-%H%M%S)-$$}"
PREFIX="${PREFIX%/}"

# s3 put|get KEY [FILE]: the project's own AWS SDK, configured as the agent configures it.
s3() {
	node -e '
		const { S3Client, CreateBucketCommand, HeadBucketCommand, PutObjectCommand, GetObjectCommand } = require("@aws-sdk/client-s3");
		const [op, bucket, key, file] = process.argv.slice(1);
		const client = new S3Client({
			...(process.env.AWS_ENDPOINT_URL_S3 ? { endpoint: process.env.AWS_ENDPOINT_URL_S3 } : {}),
			forcePathStyle: /^(1|true|yes|on)$/i.test(process.env.S3_FORCE_PATH_STYLE ?? "")
		});
		(async () => {
			if (op === "put") {
				await client.send(new HeadBucketCommand({ Bucket: bucket })).catch(() => client.send(new CreateBucketCommand({ Bucket: bucket })));
				await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: require("node:fs").readFileSync(file) }));
			} else {
				process.stdout.write(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body.transformToString());
			}
		})().catch((err) => { console.error(`s3 ${op} s3://${bucket}/${key}: ${err.name}: ${err.message}`); process.exit(1); });
	' "$@"
}

export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="${AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED:-true}"
s3 put "$BUCKET" "$PREFIX/data.csv" examples/sample.csv
echo "uploaded s3://$BUCKET/$PREFIX/data.csv" >&2

output="$(SOURCE="s3://$BUCKET/$PREFIX/data.csv" OUTPUT="s3://$BUCKET/$PREFIX/report.json" bash examples/run-pipeline.sh)"
echo "$output"
s3 get "$BUCKET" "${output#s3://"$BUCKET"/}" | head -n 20
