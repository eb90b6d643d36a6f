#!/usr/bin/env bash
# Dashboard and WebSocket feed (issue 6):
#  1. web/ unit tests (node --test), including the check that the committed uPlot equals the
#     npm package pinned in web/package.json;
#  2. browser tests: Debian's chromium driven by playwright-core against the real release
#     server fed by the real helper (tests/browser/*.test.mjs), screenshots in
#     tests/browser/artifacts/; the WebSocket slow-client test with 50 normal clients.
# Needs: node, chromium, `npm ci` in web/ and tests/browser/ (.ci/install.d/40-web.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then echo "node missing (run .ci/install.d/40-web.sh)" >&2; exit 1; fi
  echo "SKIPPED: node not installed (run .ci/install.d/40-web.sh)"; exit 0
fi
(cd web && node --test test/)
if [ ! -x /usr/bin/chromium ] || [ ! -d tests/browser/node_modules/playwright-core ]; then
  if [ "${CI:-}" = "true" ]; then echo "chromium or playwright-core missing (run .ci/install.d/40-web.sh)" >&2; exit 1; fi
  echo "SKIPPED: chromium or tests/browser/node_modules missing (run .ci/install.d/40-web.sh)"; exit 0
fi
cargo build --release -q -p netwatch-server -p netwatch-capture --bins
(cd tests/browser && node --test --test-concurrency=1 ./*.test.mjs)
