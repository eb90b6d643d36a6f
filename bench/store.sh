#!/usr/bin/env bash
# Store benchmark (issue 4, done-when 5): fills a release netwatch-server with FLOWS distinct
# flows spread over the last 59 minutes through the real ingest socket (the nw-load example:
# pre-encoded FlowBatches of 10,000 records, a live helper's Hello), then prints
#   - the ingest rate (records/s from the first batch written to the last Ack read),
#   - the server's resident memory (VmRSS) and peak (VmHWM),
#   - p50/p95/p99 latency of 10 representative queries, each driven by wrk over loopback
#     (1 thread, CONNS connections, SECS seconds; rate limiting off for loopback).
# Usage: bench/store.sh [FLOWS]    env: CONNS (default 2), SECS (default 5),
#        PRIO (nice value for the server and wrk, e.g. -10 as root on a machine shared with
#        builds, so the numbers measure the server rather than its neighbours; default 0)
# Needs: wrk (apt-get install wrk). Results go to stdout as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS="${1:-${FLOWS:-1000000}}"
CONNS="${CONNS:-2}"
SECS="${SECS:-5}"
PRIO="${PRIO:-0}"
command -v wrk >/dev/null || { echo "bench/store.sh needs wrk (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p netwatch-server --bin netwatch-server --example nw-load
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

NETWATCH_LOG=warn,netwatch_server::server=info nice -n "$PRIO" target/release/netwatch-server \
  --listen 127.0.0.1:0 --socket "$dir/capture.sock" --rate-limit-loopback 0 2>"$dir/server.log" &
srv=$!
pids+=($srv)
for _ in $(seq 100); do grep -q "listening on http://" "$dir/server.log" && break; sleep 0.1; done
addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.log" | head -1 | sed 's|listening on http://||')
rss() { awk -v k="$1" '$1 == k":" {print int($2/1024)}' "/proc/$srv/status"; }
rss_idle=$(rss VmRSS)

nice -n "$PRIO" target/release/examples/nw-load --socket "$dir/capture.sock" --flows "$FLOWS" --minutes 59 --hold >"$dir/load.out" 2>"$dir/load.err" &
pids+=($!)
for _ in $(seq 600); do grep -q ingest_rate "$dir/load.out" && break; sleep 0.1; done
rate=$(grep -o 'ingest_rate=[0-9]*' "$dir/load.out" | cut -d= -f2)
secs=$(grep -o 'ingest_seconds=[0-9.]*' "$dir/load.out" | cut -d= -f2)
sleep 2
stored=$(curl -s "http://$addr/api/v1/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_stored"])')
rss_full=$(rss VmRSS)
rss_peak=$(rss VmHWM)

t5=$(date -u -d '-5 min' +%Y-%m-%dT%H:%M:%SZ)
t0=$(date -u +%Y-%m-%dT%H:%M:%SZ)
queries=(
  "/api/v1/flows"
  "/api/v1/flows?sort_by=bytes&limit=100"
  "/api/v1/flows?src_ip=10.0.1.0/24&protocol=tcp"
  "/api/v1/flows?port=443&sort_by=packets&limit=50&offset=500"
  "/api/v1/flows?time_start=$t5&time_end=$t0&sort_by=duration"
  "/api/v1/flows?dst_ip=172.16.3.0/24&status=active&limit=20"
  "/api/v1/flows?port_min=1024&port_max=65535&sort_by=src_ip&sort_order=asc&limit=100"
  "/api/v1/top-talkers?duration=5m&limit=10"
  "/api/v1/top-talkers?duration=1h&limit=50"
  "/api/v1/metrics/history?duration=15m&interval=5s"
  "/api/v1/protocols?duration=1h"
)

echo
echo "netwatch-server store benchmark: $(nproc) CPUs, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), nice $PRIO, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| flows stored | $stored (sent $FLOWS) |"
echo "| ingest rate | $rate records/s ($FLOWS records in ${secs} s) |"
echo "| server RSS idle / after fill / peak | ${rss_idle} MB / ${rss_full} MB / ${rss_peak} MB |"
echo
echo "wrk -t1 -c$CONNS -d${SECS}s per query (latency in ms):"
echo
echo "| query | p50 | p95 | p99 | req/s |"
echo "|---|---|---|---|---|"
for q in "${queries[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr$q")
  [ "$code" = 200 ] || { echo "query $q answered $code" >&2; exit 1; }
  line=$(nice -n "$PRIO" wrk -t1 -c"$CONNS" -d"${SECS}s" -s bench/wrk_percentiles.lua "http://$addr$q" | grep '^PCT')
  p50=$(sed 's/.*p50=\([0-9]*\).*/\1/' <<<"$line"); p95=$(sed 's/.*p95=\([0-9]*\).*/\1/' <<<"$line")
  p99=$(sed 's/.*p99=\([0-9]*\).*/\1/' <<<"$line"); reqs=$(sed 's/.*reqs=\([0-9]*\).*/\1/' <<<"$line")
  errs=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line"); s=$(sed 's/.*secs=\([0-9.]*\).*/\1/' <<<"$line")
  [ "$errs" = 0 ] || echo "warning: $errs errors for $q" >&2
  shown=${q//$t5/NOW-5m}; shown=${shown//$t0/NOW}
  awk -v q="$shown" -v a="$p50" -v b="$p95" -v c="$p99" -v r="$reqs" -v s="$s" \
    'BEGIN { printf "| `%s` | %.2f | %.2f | %.2f | %.0f |\n", q, a/1000, b/1000, c/1000, r/s }'
done
echo
echo "server RSS after the queries: $(rss VmRSS) MB; load average after: $(cut -d" " -f1-3 /proc/loadavg)"
