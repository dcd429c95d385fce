#!/usr/bin/env bash
# Runs the spec's 6-stage pipeline end to end on the example data and prints where the output went.
#
# Needs a server and an agent node on the same cluster, e.g. in two terminals (TRANSPORTER=TCP works
# on one machine without NATS):
#   TRANSPORTER=TCP npm start
#   TRANSPORTER=TCP npm run agent
# and an operator token:
#   export TOKEN=$(npm run --silent token -- --roles operator --sub demo)
#
# The agent reads and writes files only inside its data root (AGENT_DATA_ROOT, default ./agent-data
# where `npm run agent` runs), which it creates on start with a copy of examples/sample.csv. Locations
# given as relative paths are taken inside that root, so this script works whatever the root is.
#
# Environment: TOKEN (required), MCP_URL (default http://127.0.0.1:${SERVER_PORT:-8080}),
# SOURCE (default sample.csv, in the data root), OUTPUT (default a fresh runs/<time>-<pid>/sample.output.json
# in the data root), TIMEOUT_S (default 120).
set -euo pipefail

: "${TOKEN:?set TOKEN, e.g. export TOKEN=\$(npm run --silent token -- --roles operator --sub demo)}"
MCP_URL="${MCP_URL:-http://127.0.0.1:${SERVER_PORT:-8080}}"
TIMEOUT_S="${TIMEOUT_S:-120}"
SOURCE="${SOURCE:-sample.csv}"
OUTPUT="${OUTPUT:-runs/$(date +%Y%m%d-%H%M%S)-$$/sample.output.json}"

for tool in curl node; do
	command -v "$tool" >/dev/null || { echo "needs $tool on PATH" >&2; exit 2; }
done

# Reads JSON on stdin and prints one field (a dotted path); node is there anyway, jq may not be.
field() {
	node -e '
		let text = "";
		process.stdin.on("data", c => (text += c)).on("end", () => {
			let value = JSON.parse(text);
			for (const key of process.argv[1].split(".")) value = value == null ? undefined : value[key];
			process.stdout.write(value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value));
		});
	' "$1"
}

# POST/GET with the token; prints the body, fails loudly on a non-2xx answer.
api() {
	local method="$1" path="$2" body="${3:-}" response status
	if [[ -n "$body" ]]; then
		response="$(curl -sS -X "$method" "$MCP_URL/api/v1$path" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d "$body" -w $'\n%{http_code}')"
	else
		response="$(curl -sS -X "$method" "$MCP_URL/api/v1$path" -H "Authorization: Bearer $TOKEN" -w $'\n%{http_code}')"
	fi
	status="${response##*$'\n'}"
	response="${response%$'\n'*}"
	if [[ "$status" != 2* ]]; then
		echo "$method $path answered $status: $response" >&2
		exit 1
	fi
	printf '%s' "$response"
}

PIPELINE='{
	"name": "data-processing-pipeline",
	"description": "6-stage data processing pipeline",
	"stages": [
		{ "name": "data-ingestion", "type": "data-ingestion", "required": true, "timeout": 300 },
		{ "name": "data-transformation", "type": "transformation", "required": true, "timeout": 600 },
		{ "name": "data-analysis", "type": "analysis", "required": true, "timeout": 900 },
		{ "name": "data-validation", "type": "validation", "required": true, "timeout": 300 },
		{ "name": "data-processing", "type": "processing", "required": true, "timeout": 1200, "parameters": { "group_by": ["region"] } },
		{ "name": "output-generation", "type": "output", "required": true, "timeout": 300 }
	],
	"dependencies": [
		{ "from": 0, "to": 1 }, { "from": 1, "to": 2 }, { "from": 2, "to": 3 }, { "from": 3, "to": 4 }, { "from": 4, "to": 5 }
	]
}'

pipeline_id="$(api POST /pipelines "$PIPELINE" | field pipeline_id)"
echo "pipeline $pipeline_id created" >&2

EXECUTION="{
	\"input_data\": { \"source\": \"$SOURCE\", \"format\": \"csv\", \"output\": \"$OUTPUT\" },
	\"parameters\": { \"delimiter\": \",\" }
}"
run_id="$(api POST "/pipelines/$pipeline_id/execute" "$EXECUTION" | field run_id)"
echo "run $run_id started" >&2

deadline=$((SECONDS + TIMEOUT_S))
last=""
while :; do
	run="$(api GET "/pipelines/$pipeline_id/runs/$run_id")"
	status="$(printf '%s' "$run" | field status)"
	line="$status, progress $(printf '%s' "$run" | field progress), completed stages $(printf '%s' "$run" | field completed_stages)"
	[[ "$line" != "$last" ]] && echo "  $line" >&2 && last="$line"
	case "$status" in
		completed) break ;;
		failed|cancelled)
			echo "run $run_id $status:" >&2
			printf '%s' "$run" | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>{for(const s of JSON.parse(t).stages)console.error(`  ${s.index}. ${s.name}: ${s.status}${s.error?` (${s.error})`:""}`)})'
			exit 1 ;;
	esac
	if ((SECONDS > deadline)); then
		echo "run $run_id still $status after ${TIMEOUT_S}s (is an agent node running? npm run agent)" >&2
		exit 1
	fi
	sleep 1
done

output="$(printf '%s' "$run" | field stages.5.result.output)"
# The worker answers with a file:// URL; print the plain path.
printf '%s\n' "${output#file://}"
