#!/usr/bin/env bash
# Offline flow extraction benchmark (issue 3): `netwatch-capture --read` beside nfdump's
# nfpcapd, softflowd, pmacct's pmacctd, tshark's conversation table and the tcpdump
# read-and-discard floor, all reading the same synthetic capture file.
#
#   bench/offline.sh            (PACKETS=2000000 FLOWS=100000 SEED=1 RUNS=5 SLICE=200000)
#
# The capture is generated with tests/fixtures/tools/make_bench_pcap.py (for reading only:
# never replay it onto an interface). softflowd exports to 127.0.0.1:9 (discard) only.
# Prints a Markdown table of median packets per CPU-second (user+sys, children included)
# and median wall time over RUNS runs (tshark: one run on a SLICE-packet prefix), with the
# ratio of netwatch-capture to each peer. Timings are never test assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PACKETS=${PACKETS:-2000000}
FLOWS=${FLOWS:-100000}
SEED=${SEED:-1}
RUNS=${RUNS:-5}
SLICE=${SLICE:-200000}
OUT=${OUT:-$ROOT/bench/out/offline}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need nfpcapd || missing+=(nfdump)
need softflowd || missing+=(softflowd)
need pmacctd || missing+=(pmacct)
need tshark || missing+=(tshark)
need tcpdump || missing+=(tcpdump)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "building netwatch-capture (release)..." >&2
cargo build --release -q -p netwatch-capture
NW="$ROOT/target/release/netwatch-capture"

CAP="$OUT/bench-$PACKETS-$FLOWS-$SEED.pcap"
TRUTH="$OUT/bench-$PACKETS-$FLOWS-$SEED.flows.csv"
if [ ! -s "$CAP" ] || [ ! -s "$TRUTH" ]; then
  echo "generating $CAP ..." >&2
  python3 tests/fixtures/tools/make_bench_pcap.py "$CAP" --packets "$PACKETS" --flows "$FLOWS" \
    --seed "$SEED" --truth "$TRUTH"
fi
SLICE_CAP="$OUT/slice-$SLICE.pcap"
[ -s "$SLICE_CAP" ] || tcpdump -r "$CAP" -c "$SLICE" -w "$SLICE_CAP" 2>/dev/null

# Correctness first: the flows must equal the generator's ground truth.
"$NW" --read "$CAP" >"$OUT/netwatch.flows.csv" 2>"$OUT/netwatch.summary.txt"
if cmp -s "$OUT/netwatch.flows.csv" "$TRUTH"; then
  SAME="identical to the generator's ground truth ($(($(wc -l <"$TRUTH") - 1)) flows)"
else
  SAME="DIFFERENT from the ground truth (see $OUT/netwatch.flows.csv)"
fi

cat >"$OUT/pmacctd.conf" <<CONF
daemonize: false
pcap_savefile: $CAP
aggregate: src_host, dst_host, src_port, dst_port, proto, vlan
plugins: print
print_output: csv
print_output_file: $OUT/pmacctd.csv
CONF

RESULTS="$OUT/results.tsv"
: >"$RESULTS"
# measure NAME PACKETS RUNS CMD...: appends "name packets wall user sys" per run.
measure() {
  local name=$1 packets=$2 runs=$3
  shift 3
  for _ in $(seq "$runs"); do
    rm -rf "$OUT/nfpcapd.d" && mkdir -p "$OUT/nfpcapd.d"
    /usr/bin/time -f "%e %U %S" -o "$OUT/time.txt" "$@" >/dev/null 2>&1 || {
      echo "warning: $name exited non-zero" >&2
    }
    echo "$name $packets $(cat "$OUT/time.txt" | tail -1)" >>"$RESULTS"
  done
}

echo "timing ($RUNS runs each; tshark once on $SLICE packets)..." >&2
measure netwatch-capture "$PACKETS" "$RUNS" "$NW" --read "$CAP"
measure "nfpcapd -r" "$PACKETS" "$RUNS" nfpcapd -r "$CAP" -w "$OUT/nfpcapd.d"
measure "softflowd -r" "$PACKETS" "$RUNS" softflowd -r "$CAP" -n 127.0.0.1:9 -d -c none -6 -T vlan -m 1000000
measure "pmacctd (savefile)" "$PACKETS" "$RUNS" pmacctd -f "$OUT/pmacctd.conf"
measure "tshark -z conv,ip" "$SLICE" 1 tshark -n -q -z conv,ip -r "$SLICE_CAP"
measure "tcpdump -w /dev/null (floor)" "$PACKETS" "$RUNS" tcpdump -r "$CAP" -w /dev/null

python3 - "$RESULTS" "$SAME" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) < 5:
        continue
    name = " ".join(p[:-4]); pk, wall, user, sys_ = int(p[-4]), float(p[-3]), float(p[-2]), float(p[-1])
    rows.setdefault(name, []).append((pk, wall, user + sys_))
def med(name):
    r = rows[name]
    pps = statistics.median(pk / max(cpu, 1e-3) for pk, _, cpu in r)
    return r[0][0], len(r), statistics.median(w for _, w, _ in r), statistics.median(c for _, _, c in r), pps
ours = med("netwatch-capture")[4]
print("| tool | packets | runs | median wall (s) | median CPU user+sys (s) | packets per CPU-second | netwatch-capture / tool |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in rows:
    pk, n, wall, cpu, pps = med(name)
    print(f"| {name} | {pk:,} | {n} | {wall:.2f} | {cpu:.2f} | {pps/1e6:.2f} M | {ours/pps:.2f}x |")
print()
print(f"netwatch-capture flows: {sys.argv[2]}")
PY
echo
echo "machine: $(nproc) CPU(s), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
echo "versions: $(nfpcapd -V 2>&1 | head -1 || true); $(softflowd -h 2>&1 | sed -n 's/.*softflowd version \([^ .]*\.[^ .]*\.[^ .]*\).*/softflowd \1/p' | head -1); $(pmacctd -V 2>&1 | head -1); $(tshark -v 2>/dev/null | head -1); $(tcpdump --version 2>&1 | head -1)"
