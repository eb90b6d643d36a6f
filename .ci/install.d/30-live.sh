#!/usr/bin/env bash
# Live capture tests and bench (tests/tests/live*.rs, privilege.rs, bench/live.sh):
# tshark/tcpdump (side-by-side capture + oracle), iproute2 (netns, veth), ping, setpriv and
# capsh/setcap (util-linux, libcap2-bin), curl (HTTP API), python3 (traffic generator),
# netsniff-ng (trafgen + netsniff-ng peer in the bench), strace (debugging the allowlist).
set -euo pipefail
apt-get install -y -qq --no-install-recommends \
  tshark tcpdump iproute2 iputils-ping util-linux libcap2-bin curl python3 netsniff-ng procps strace >/dev/null
