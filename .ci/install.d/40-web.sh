#!/usr/bin/env bash
# Dashboard tests (issue 6): Debian's chromium for the browser tests (driven by playwright-core,
# which downloads no browser), and the npm packages pinned by web/ and tests/browser/
# package-lock.json, from the npm registry only.
set -euo pipefail
cd "$(dirname "$0")/../.."
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
# Node.js and npm come with the machine (v20); Debian's only if they are missing.
command -v node >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
(cd web && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
