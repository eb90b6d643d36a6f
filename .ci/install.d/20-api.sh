#!/usr/bin/env bash
# API suite (scripts/test.d/20-api.sh): schemathesis from PyPI in a virtual environment.
# (The store benchmark bench/store.sh also wants `wrk`: apt-get install wrk; not needed in CI.)
set -euo pipefail
apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
if [ ! -x /opt/netwatch-venv/bin/st ]; then
  python3 -m venv /opt/netwatch-venv
  /opt/netwatch-venv/bin/pip install -q --upgrade pip
  /opt/netwatch-venv/bin/pip install -q schemathesis
fi
/opt/netwatch-venv/bin/st --version
