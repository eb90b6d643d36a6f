#!/usr/bin/env bash
# Issue 4, done-when 2: schemathesis (PyPI) against the OpenAPI document the server serves
# (/api/v1/openapi.yaml), every check enabled: responses match the schema, documented status
# codes and content types, no 5xx, valid data accepted, invalid data rejected, 405 for
# undeclared methods. A synthetic helper (the nw-load example, holding its connection) keeps
# the server healthy and gives it 20,000 flows to return.
# Needs schemathesis: .ci/install.d/20-api.sh installs it into /opt/netwatch-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

ST="${SCHEMATHESIS:-}"
if [ -z "$ST" ]; then
  if [ -x /opt/netwatch-venv/bin/st ]; then ST=/opt/netwatch-venv/bin/st
  elif command -v st >/dev/null 2>&1; then ST=st
  fi
fi
if [ -z "$ST" ]; then
  if [ "${CI:-}" = "true" ]; then echo "schemathesis missing (run .ci/install.d/20-api.sh)" >&2; exit 1; fi
  echo "SKIPPED: schemathesis not installed (run .ci/install.d/20-api.sh)"; exit 0
fi

cargo build --release -q -p netwatch-server --bin netwatch-server --example nw-load
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

NETWATCH_LOG=info target/release/netwatch-server --listen 127.0.0.1:0 --socket "$dir/capture.sock" \
  --rate-limit-loopback 0 2>"$dir/server.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on http://" "$dir/server.log" && break; sleep 0.1; done
addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.log" | head -1 | sed 's|listening on http://||')
[ -n "$addr" ] || { cat "$dir/server.log"; exit 1; }
target/release/examples/nw-load --socket "$dir/capture.sock" --flows 20000 --minutes 30 --hold >"$dir/load.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ingest_rate "$dir/load.log" && break; sleep 0.1; done

base="http://$addr/api/v1"
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=scripts "$ST" run "$base/openapi.yaml" \
  --url "$base" \
  --checks all \
  --exclude-path /ws \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" \
  --generation-deterministic \
  --request-timeout 30 \
  --workers 2
# (warp logs malformed requests from the probes at ERROR level; a panic is what must not happen)
if grep -q "panicked" "$dir/server.log"; then echo "the server panicked:"; grep -A5 panicked "$dir/server.log"; exit 1; fi
kill -0 "${pids[0]}" || { echo "the server died"; exit 1; }
echo "schemathesis: no failures"
