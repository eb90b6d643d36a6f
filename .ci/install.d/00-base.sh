#!/usr/bin/env bash
# Packages the Rust tests use: tshark (oracle), tcpdump, iproute2 (netns/veth).
set -euo pipefail
apt-get install -y -qq --no-install-recommends tshark tcpdump iproute2 python3 >/dev/null
