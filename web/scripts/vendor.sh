#!/usr/bin/env bash
# Regenerates web/assets/vendor/ from the npm registry: installs the exact versions pinned in
# package.json / package-lock.json (npm ci) and copies the charting library's minified build,
# stylesheet and licence. The copies are committed so that `cargo build` on a fresh clone needs
# no npm; test/vendor.test.mjs checks that they equal the pinned package's files.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
mkdir -p assets/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js assets/vendor/uPlot.iife.min.js
cp node_modules/uplot/dist/uPlot.min.css assets/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE assets/vendor/uPlot.LICENSE.txt
echo "vendored uplot $(node -p 'require("./node_modules/uplot/package.json").version')"
