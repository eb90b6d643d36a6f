#!/usr/bin/env bash
# Deployment checks (needs systemd's systemd-analyze, systemd-sysusers, systemd-tmpfiles:
# .ci/install.d/50-deploy.sh installs them). No root needed, nothing is installed on the host.
#  1. systemd-analyze security --offline=yes on both units: the server's "Overall exposure level"
#     must stay <= 2.0 and the helper's <= 1.5 (it is 1.5 as shipped, CAP_SETPCAP included so
#     the helper can empty its bounding set; docs/SECURITY.md).
#  2. systemd-analyze verify: no unknown or unparsable directive in either unit.
#  3. sysusers.d and tmpfiles.d entries apply cleanly to a scratch root.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVER_MAX=2.0
HELPER_MAX=1.5

exposure() { # unit file -> the number on its "Overall exposure level" line
  local out
  out=$(systemd-analyze security --offline=yes --no-pager "$1" 2>&1) || true
  local line
  line=$(grep -E 'Overall exposure level for .*: [0-9]+\.[0-9]+' <<<"$out" || true)
  if [ -z "$line" ]; then
    echo "FAIL: no 'Overall exposure level' line for $1:" >&2
    echo "$out" >&2
    return 1
  fi
  sed -E 's/.*: ([0-9]+\.[0-9]+).*/\1/' <<<"$line"
}

check_max() { # name score max
  if awk -v s="$2" -v m="$3" 'BEGIN { exit !(s > m) }'; then
    echo "FAIL: $1 exposure $2 is above $3 (systemd-analyze security --offline=yes deploy/$1)" >&2
    [ -f "deploy/$1" ] && systemd-analyze security --offline=yes --no-pager "deploy/$1" | grep -v '✓' >&2
    exit 1
  fi
  echo "ok: $1 exposure $2 (limit $3)"
}

server=$(exposure deploy/netwatch-server.service)
helper=$(exposure deploy/netwatch-capture.service)
check_max netwatch-server.service "$server" "$SERVER_MAX"
check_max netwatch-capture.service "$helper" "$HELPER_MAX"

# The documented "expose the dashboard" drop-in must keep the server within the limit too.
expdir=$(mktemp -d)
mkdir -p "$expdir/netwatch-server.service.d"
cp deploy/netwatch-server.service "$expdir/"
cp deploy/examples/netwatch-server-expose.conf "$expdir/netwatch-server.service.d/expose.conf"
exposed=$(cd "$expdir" && exposure netwatch-server.service)
rm -rf "$expdir"
check_max "netwatch-server.service + examples/netwatch-server-expose.conf" "$exposed" "$SERVER_MAX"

# verify reports missing binaries (not installed here): ignore only those lines.
verify=$(systemd-analyze verify --man=no deploy/netwatch-server.service deploy/netwatch-capture.service 2>&1 \
  | grep -v -E 'is not executable|Command .* not found' || true)
if [ -n "$verify" ]; then
  echo "FAIL: systemd-analyze verify complained:" >&2
  echo "$verify" >&2
  exit 1
fi
echo "ok: systemd-analyze verify (both units)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/etc"
systemd-sysusers --root="$scratch" "$PWD/deploy/sysusers.d/netwatch.conf" 2>/dev/null
grep -q '^netwatch:' "$scratch/etc/passwd"
grep -q '^netwatch-capture:' "$scratch/etc/passwd"
gid=$(awk -F: '$1=="netwatch"{print $3}' "$scratch/etc/group")
[ "$(awk -F: '$1=="netwatch-capture"{print $4}' "$scratch/etc/passwd")" = "$gid" ] || {
  echo "FAIL: netwatch-capture's primary group is not netwatch" >&2; exit 1; }
echo "ok: sysusers.d creates netwatch, netwatch-capture (primary group netwatch)"
systemd-tmpfiles --root="$scratch" --create "$PWD/deploy/tmpfiles.d/netwatch.conf"
[ "$(stat -c %a "$scratch/run/netwatch")" = 750 ] || { echo "FAIL: /run/netwatch mode" >&2; exit 1; }
[ "$(stat -c %a "$scratch/etc/netwatch")" = 750 ] || { echo "FAIL: /etc/netwatch mode" >&2; exit 1; }
echo "ok: tmpfiles.d creates /etc/netwatch and /run/netwatch (0750)"

echo "deploy checks passed: server exposure $server (exposed: $exposed), helper exposure $helper"
