#!/usr/bin/env bash
# Nightly fuzzing: bring a stack up on free ports, run schemathesis with many examples through the
# gateway and against a replica, write JUnit reports to reports/, and always tear the stack down.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
EXAMPLES=${FUZZ_MAX_EXAMPLES:-1000}
STATE_DIR=$(mktemp -d)
mkdir -p reports
trap '"$BIN/query-harness" down --state-dir "$STATE_DIR" >/dev/null || true; rm -rf "$STATE_DIR"' EXIT
"$BIN/query-harness" up --detach --edge-port 0 --gateway-port 0 --state-dir "$STATE_DIR"
read -r GATEWAY REPLICA < <("$BIN/python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["gateway_url"], s["replicas"][0]["url"])' "$STATE_DIR/state.json")
# Through the gateway an undefined method is API Gateway's 403, not 405: unsupported_method runs on the replica.
"$BIN/schemathesis" run contracts/openapi.yaml --url "$GATEWAY" --max-examples "$EXAMPLES" \
    --exclude-checks unsupported_method --report junit --report-junit-path reports/fuzz-gateway.xml
"$BIN/schemathesis" run contracts/openapi.yaml --url "$REPLICA" --max-examples "$EXAMPLES" \
    --report junit --report-junit-path reports/fuzz-replica.xml
