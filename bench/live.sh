#!/usr/bin/env bash
# Live-capture benchmark (needs root, trafgen/netsniff-ng/tcpdump: .ci/install.d/30-live.sh).
#
# Two private network namespaces joined by a veth pair; trafgen (one CPU) sends 64-byte UDP
# frames (1,000 flows) from one end at stepped rates; on the other end THREE capturers run
# side by side on the same interface in the same run:
#   netwatch-capture (release, seccomp on, --user nobody, streaming to a real netwatch-server),
#   tcpdump -w /dev/null, netsniff-ng --out /dev/null.
# Per rate it prints: frames sent (veth tx counter), frames each capturer received, its
# kernel drops, its CPU time per frame sent (ns, from the scheduler's per-thread run time in
# /proc/<pid>/task/*/schedstat: nanosecond resolution, unlike the 10 ms ticks of
# /proc/<pid>/stat) and the same as % of one core per 100 kpps, the helper/tcpdump ratio of
# ns per frame (the target: <= 0.50) and the helper's RSS.
# BENCH_HELPER_ARGS adds flags to the helper's command line (e.g. ring geometry).
# BENCH_PERF=DIR also records the helper with `perf record -g` per step (DIR/perf-RATE.data).
# BENCH_HELPER_BIN runs another helper binary (e.g. an older build, to compare).
# BENCH_REPEAT=N runs the whole list of rates N times (alternating rates, so slow drifts of
# the machine's load spread over all of them) and ends with the median, min and max of each
# capturer's ns per frame and of the helper/tcpdump ratio per rate: the figures to quote on
# a noisy 2-core machine.
# No traffic leaves the namespaces. Usage: bench/live.sh [SECONDS_PER_STEP] [RATES...]
#   RATES in pps; "max" = trafgen unthrottled. Default: 5 s at 50000 100000 200000 max.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/live.sh needs root (network namespaces, CAP_NET_RAW)" >&2; exit 1; }
for p in trafgen netsniff-ng tcpdump ip setpriv python3; do
  command -v "$p" >/dev/null || { echo "missing $p (see .ci/install.d/30-live.sh)" >&2; exit 1; }
done
SECS=${1:-5}; shift || true
RATES=("$@"); [ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 200000 max)
cargo build --release -q -p netwatch-capture -p netwatch-server
HELPER=${BENCH_HELPER_BIN:-$PWD/target/release/netwatch-capture}
SERVER=$PWD/target/release/netwatch-server

tag=$$
NSG=nwbench-$tag-g; NSC=nwbench-$tag-c; VG=nwbg$tag; VC=nwbc$tag
DIR=$(mktemp -d /tmp/netwatch-bench-XXXXXX); chmod 777 "$DIR"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true   # reap them here, so bash reports no "Killed" job at exit
  ip netns del "$NSG" 2>/dev/null || true; ip netns del "$NSC" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$NSG"; ip netns add "$NSC"
ip link add "$VG" netns "$NSG" type veth peer name "$VC" netns "$NSC"
ip -n "$NSG" addr add 10.98.0.2/24 dev "$VG"; ip -n "$NSC" addr add 10.98.0.1/24 dev "$VC"
for ns in "$NSG" "$NSC"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; ip -n "$ns" link set lo up; done
ip -n "$NSG" link set "$VG" up; ip -n "$NSC" link set "$VC" up
DMAC=$(ip netns exec "$NSC" cat /sys/class/net/"$VC"/address)
SMAC=$(ip netns exec "$NSG" cat /sys/class/net/"$VG"/address)
# 64-byte frames: Ethernet 14 + IPv4 20 + UDP 8 + 22 bytes payload; source port cycles over
# 1,000 values (1,000 flows); destination port 9 (discard; nothing listens: the frames are
# dropped by the stack after the capturers saw them, and no ICMP goes back (rate limited)).
cat >"$DIR/udp64.trafgen" <<EOF
{
  eth(da=$DMAC, sa=$SMAC, type=0x0800),
  ipv4(saddr=10.98.0.2, daddr=10.98.0.1, proto=17, ttl=64),
  udp(sport=dinc(10000, 10999), dport=9),
  fill(0x00, 22)
}
EOF

setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$SERVER" --socket "$DIR/capture.sock" \
  --listen 127.0.0.1:18099 --log warn 2>"$DIR/server.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$DIR/capture.sock" ] && break; sleep 0.05; done

# CPU time of every live thread of a process, ns (sum_exec_runtime: user + system).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END{printf "%d\n", s}'; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
txcount() { ip netns exec "$NSG" cat /sys/class/net/"$VG"/statistics/tx_packets; }

REPEAT=${BENCH_REPEAT:-1}
printf '%-9s %-9s | %-34s | %-34s | %-34s | %-10s | %s\n' "rate" "sent" \
  "netwatch: recv drops ns/fr %/100k" "tcpdump: recv drops ns/fr %/100k" "netsniff-ng: recv drops ns/fr %/100k" "nw/tcpdump" "helper RSS"
for _rep in $(seq "$REPEAT"); do
for rate in "${RATES[@]}"; do
  # Fresh capturers per step, so each reports its own totals at exit.
  NETWATCH_LOG=info ip netns exec "$NSC" "$HELPER" --interface "$VC" --connect "$DIR/capture.sock" --user nobody ${BENCH_HELPER_ARGS:-} \
    2>"$DIR/helper.log" & HP=$!; PIDS+=($HP)
  ip netns exec "$NSC" tcpdump -i "$VC" -n -s 0 -w /dev/null 2>"$DIR/tcpdump.log" & TP=$!; PIDS+=($TP)
  ip netns exec "$NSC" netsniff-ng --in "$VC" --out /dev/null --silent --ring-size 16MiB >"$DIR/nsng.log" 2>&1 & NP=$!; PIDS+=($NP)
  # netsniff-ng takes a moment to start (seconds on a cold first run): wait until the three
  # capturers' packet sockets exist (header line + at least 3), then for their rings.
  for _ in $(seq 100); do
    [ "$(ip netns exec "$NSC" cat /proc/net/packet | wc -l)" -ge 4 ] && break; sleep 0.1
  done
  sleep 2
  h0=$(cpu_ns $HP); t0=$(cpu_ns $TP); n0=$(cpu_ns $NP); s0=$(txcount)
  if [ -n "${BENCH_PERF:-}" ]; then
    mkdir -p "$BENCH_PERF"
    perf record -q -g -p "$HP" -o "$BENCH_PERF/perf-$rate.data" >/dev/null 2>&1 & PP=$!
  fi
  if [ "$rate" = max ]; then
    timeout -s INT "$SECS" ip netns exec "$NSG" trafgen --dev "$VG" --conf "$DIR/udp64.trafgen" --cpus 1 -C >/dev/null 2>&1 || true
  else
    ip netns exec "$NSG" trafgen --dev "$VG" --conf "$DIR/udp64.trafgen" --cpus 1 -C -b "${rate}pps" \
      -n $((rate * SECS)) >/dev/null 2>&1
  fi
  sleep 1
  s1=$(txcount); h1=$(cpu_ns $HP); t1=$(cpu_ns $TP); n1=$(cpu_ns $NP); rss=$(rss_kib $HP)
  if [ -n "${BENCH_PERF:-}" ]; then kill -INT "$PP"; wait "$PP" 2>/dev/null || true; fi
  sent=$((s1 - s0))
  kill -TERM $HP; kill -INT $TP; kill -INT $NP
  wait $HP $TP $NP 2>/dev/null || true
  sed -i 's/\x1b\[[0-9;]*m//g' "$DIR/helper.log"   # strip the log's colours
  hrecv=$(grep -o 'frames=[0-9]*' "$DIR/helper.log" | tail -1 | cut -d= -f2 || true)
  hdrop=$(grep -o 'kernel_drops=[0-9]*' "$DIR/helper.log" | tail -1 | cut -d= -f2 || true)
  trecv=$(grep -o '^[0-9]* packets captured' "$DIR/tcpdump.log" | awk '{print $1}' || true)
  tdrop=$(grep -o '^[0-9]* packets dropped by kernel' "$DIR/tcpdump.log" | awk '{print $1}' || true)
  nrecv=$(tr '\r' '\n' <"$DIR/nsng.log" | grep -oE '[0-9]+ +packets passed filter' | awk '{print $1}' || true)
  ndrop=$(tr '\r' '\n' <"$DIR/nsng.log" | grep -oE '[0-9]+ +packets failed filter' | awk '{print $1}' || true)
  [ -n "${BENCH_DEBUG:-}" ] && { tail -2 "$DIR/helper.log"; cat "$DIR/tcpdump.log"; tr "\r" "\n" <"$DIR/nsng.log" | grep -v "Cannot set"; }
  # The helper and tcpdump also count the few frames before/after trafgen (none here: IPv6
  # off, no other traffic in the namespaces).
  python3 - "$DIR/steps" "$rate" "$sent" "$SECS" "${hrecv:-0}" "${hdrop:-0}" $((h1 - h0)) "${trecv:-0}" "${tdrop:-0}" \
    $((t1 - t0)) "${nrecv:-0}" "${ndrop:-0}" $((n1 - n0)) "${rss:-0}" <<'PY'
import sys
steps = sys.argv[1]
rate, sent, secs = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
v = sys.argv[5:]
def col(recv, drop, ns):
    per = int(ns) / sent if sent else 0.0           # CPU ns per frame sent
    # % of one core per 100 kpps: 100,000 frames/s x ns/frame / 1e9 ns/s x 100 %
    return f"{int(recv or 0):>9} {int(drop or 0):>7} {per:>7.1f} {per / 100.0:>7.2f}"
# The issue-5 target: helper CPU per frame at most half of tcpdump's (ratio <= 0.50).
ratio = f"{int(v[2]) / int(v[5]):.2f}" if int(v[5]) else "-"
print(f"{rate:<9} {sent:<9} | {col(v[0], v[1], v[2])}  | {col(v[3], v[4], v[5])}  | {col(v[6], v[7], v[8])}  | {ratio:<10} | {int(v[9])/1024:.1f} MiB")
if sent:
    with open(steps, "a") as f:   # one line per step for the BENCH_REPEAT summary
        f.write(f"{rate} {int(v[2]) / sent} {int(v[5]) / sent} {int(v[8]) / sent} "
                f"{int(v[1]) + int(v[4]) + int(v[7])}\n")
PY
done
done
if [ "$REPEAT" -gt 1 ] && [ -s "$DIR/steps" ]; then
  python3 - "$DIR/steps" "$REPEAT" <<'PY'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    rate, h, t, n, drops = line.split()
    if rate not in rows:
        rows[rate] = []
        order.append(rate)
    rows[rate].append((float(h), float(t), float(n), int(drops)))
def mmm(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"
print(f"\nmedians of {sys.argv[2]} runs, (min-max); ns per frame sent; ratio = helper/tcpdump per run")
print(f"{'rate':<9} | {'netwatch':<18} | {'tcpdump':<18} | {'netsniff-ng':<18} | {'nw/tcpdump':<18} | drops")
for rate in order:
    r = rows[rate]
    h, t, n = [x[0] for x in r], [x[1] for x in r], [x[2] for x in r]
    ratios = [a / b for a, b in zip(h, t) if b]
    print(f"{rate:<9} | {mmm(h, '{:.1f}'):<18} | {mmm(t, '{:.1f}'):<18} | {mmm(n, '{:.1f}'):<18} | "
          f"{mmm(ratios, '{:.2f}') if ratios else '-':<18} | {sum(x[3] for x in r)}")
PY
fi
