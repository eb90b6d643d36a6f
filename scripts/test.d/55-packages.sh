#!/usr/bin/env bash
# Debian packages: `cargo deb` builds netwatch-server and netwatch-capture from the release
# binaries (built by scripts/test before this suite), and this checks what they hold:
#  * every file where the units and docs expect it, with its mode and root:root ownership;
#  * the packaged binaries are the release binaries just built (same bytes);
#  * conffiles, maintainer scripts (users and paths before the unit starts), dependencies;
#  * the units, sysusers and tmpfiles entries unpacked from the packages still parse.
# Needs cargo-deb (.ci/install.d/55-packages.sh) and dpkg-deb. Nothing is installed on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo-deb >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: cargo-deb missing (run .ci/install.d/55-packages.sh)" >&2; exit 1; fi
  echo "SKIPPED: cargo-deb not installed (cargo install cargo-deb --locked)"; exit 0
fi
for b in netwatch-server netwatch-capture; do
  [ -x "target/release/$b" ] || { echo "FAIL: target/release/$b missing (cargo build --release --bins)" >&2; exit 1; }
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for p in netwatch-server netwatch-capture; do
  cargo deb -p "$p" --no-build --no-strip --output "$scratch/$p.deb" >/dev/null
done

# "mode owner path" for every file and directory of both packages.
listing() { dpkg-deb -c "$1" | awk '{ sub(/^\./, "", $6); print $1, $2, $6 }'; }

expect() { # package mode path
  local pkg=$1 mode=$2 path=$3 line
  line=$(listing "$scratch/$pkg.deb" | awk -v p="$path" '$3 == p') || true
  [ -n "$line" ] || fail "$path missing from $pkg.deb"
  [ "${line%% *}" = "$mode" ] || fail "$path in $pkg.deb has mode ${line%% *}, want $mode"
  case "$(cut -d' ' -f2 <<<"$line")" in root/root|0/0) ;; *) false ;; esac || fail "$path in $pkg.deb is not owned by root/root: $line"
}

expect netwatch-server  -rwxr-xr-x /usr/bin/netwatch-server
expect netwatch-server  -rw-r--r-- /usr/lib/systemd/system/netwatch-server.service
expect netwatch-server  -rw-r--r-- /usr/lib/sysusers.d/netwatch.conf
expect netwatch-server  -rw-r--r-- /usr/lib/tmpfiles.d/netwatch.conf
expect netwatch-server  -rw-r----- /etc/netwatch/netwatch.toml
expect netwatch-server  -rw-r--r-- /etc/default/netwatch
expect netwatch-server  -rw-r--r-- /usr/share/doc/netwatch/examples/netwatch-server-expose.conf
expect netwatch-server  -rw-r--r-- /usr/share/doc/netwatch/OPERATIONS.md
expect netwatch-server  -rw-r--r-- /usr/share/doc/netwatch/SECURITY.md
expect netwatch-capture -rwxr-xr-x /usr/bin/netwatch-capture
expect netwatch-capture -rw-r--r-- /usr/lib/systemd/system/netwatch-capture.service
echo "ok: both packages hold binaries, units, sysusers, tmpfiles, example configuration, docs (modes, root:root)"

# Nothing else: no stray file (a test binary, an example, a source file) slips into a package.
for p in netwatch-server netwatch-capture; do
  extra=$(listing "$scratch/$p.deb" | awk '$1 !~ /^d/ { print $3 }' \
    | grep -v -E '^/usr/bin/netwatch-(server|capture)$|^/usr/lib/systemd/system/netwatch-(server|capture)\.service$|^/usr/lib/(sysusers|tmpfiles)\.d/netwatch\.conf$|^/etc/netwatch/netwatch\.toml$|^/etc/default/netwatch$|^/usr/share/doc/netwatch(-capture|-server)?/' || true)
  [ -z "$extra" ] || fail "unexpected files in $p.deb: $extra"
done
echo "ok: no other files in either package"

# The packaged binaries are the release build (--no-strip: byte for byte).
for p in netwatch-server netwatch-capture; do
  mkdir -p "$scratch/x-$p"
  dpkg-deb -x "$scratch/$p.deb" "$scratch/x-$p"
  cmp -s "target/release/$p" "$scratch/x-$p/usr/bin/$p" || fail "/usr/bin/$p in $p.deb differs from target/release/$p"
  "$scratch/x-$p/usr/bin/$p" --version >/dev/null || fail "/usr/bin/$p --version does not run"
done
echo "ok: packaged binaries equal target/release and run"

# Control data: conffiles, dependencies, maintainer scripts.
mkdir -p "$scratch/c-server" "$scratch/c-capture"
dpkg-deb -e "$scratch/netwatch-server.deb" "$scratch/c-server"
dpkg-deb -e "$scratch/netwatch-capture.deb" "$scratch/c-capture"
for f in /etc/netwatch/netwatch.toml /etc/default/netwatch; do
  grep -qx "$f" "$scratch/c-server/conffiles" || fail "$f is not a conffile of netwatch-server"
done
dpkg-deb -f "$scratch/netwatch-capture.deb" Depends | grep -q 'netwatch-server' \
  || fail "netwatch-capture does not depend on netwatch-server (which brings its user and paths)"
dpkg-deb -f "$scratch/netwatch-server.deb" Depends | grep -q 'systemd' || fail "netwatch-server does not depend on systemd"
post="$scratch/c-server/postinst"
[ -x "$post" ] || fail "netwatch-server has no executable postinst"
users=$(grep -n 'systemd-sysusers' "$post" | head -1 | cut -d: -f1)
paths=$(grep -n 'systemd-tmpfiles --create' "$post" | head -1 | cut -d: -f1)
unit=$(grep -n 'deb-systemd-invoke \$_dh_action netwatch-server' "$post" | head -1 | cut -d: -f1)
[ -n "$users" ] && [ -n "$paths" ] && [ -n "$unit" ] || fail "netwatch-server postinst lacks sysusers, tmpfiles or the unit start"
[ "$users" -lt "$paths" ] && [ "$paths" -lt "$unit" ] || fail "netwatch-server postinst: users, then paths, then the unit (lines $users, $paths, $unit)"
grep -q 'deb-systemd-helper enable\|deb-systemd-helper.*enable' "$scratch/c-capture/postinst" \
  || fail "netwatch-capture postinst does not enable its unit"
if grep -q -E 'deb-systemd-invoke (start|\$_dh_action)' "$scratch/c-capture/postinst"; then
  fail "netwatch-capture postinst starts the helper before an interface is chosen"
fi
echo "ok: conffiles, dependencies, maintainer scripts (users, paths, then the server unit; the helper enabled, not started)"

# What the packages install still parses.
systemd-analyze verify --man=no \
    "$scratch/x-netwatch-server/usr/lib/systemd/system/netwatch-server.service" \
    "$scratch/x-netwatch-capture/usr/lib/systemd/system/netwatch-capture.service" 2>&1 \
  | grep -v -E 'is not executable|Command .* not found' | grep . && fail "the packaged units do not verify"
root="$scratch/root"
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$scratch/x-netwatch-server/usr/lib/sysusers.d/netwatch.conf" 2>/dev/null
grep -q '^netwatch-capture:' "$root/etc/passwd" || fail "the packaged sysusers.d entry creates no netwatch-capture user"
systemd-tmpfiles --root="$root" --create "$scratch/x-netwatch-server/usr/lib/tmpfiles.d/netwatch.conf"
[ "$(stat -c %a "$root/run/netwatch")" = 750 ] || fail "the packaged tmpfiles.d entry does not make /run/netwatch 0750"
echo "ok: packaged units verify; packaged sysusers/tmpfiles apply to a scratch root"
echo "packages checked: $(cd "$scratch" && ls -1 ./*.deb | tr '\n' ' ')"
