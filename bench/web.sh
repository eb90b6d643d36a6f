#!/usr/bin/env bash
# Dashboard benchmark (issue 6): page load to first data, JS+CSS gzip size, packet-to-screen
# latency of the live feed (live capture on lo: run as root), server CPU with 20 dashboards.
# Prints a Markdown table (docs/PERFORMANCE.md, section "Dashboard and live feed").
# Needs: chromium, npm ci in tests/browser (.ci/install.d/40-web.sh).
# Knobs: LOADS=10 PACKETS=40 DASHBOARDS=20 CPU_SECONDS=30.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p netwatch-server -p netwatch-capture --bins
node bench/web.mjs
