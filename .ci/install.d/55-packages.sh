#!/usr/bin/env bash
# Debian packages (scripts/test.d/55-packages.sh): cargo-deb from crates.io, pinned, with its
# locked dependencies; dpkg-deb comes with the machine (dpkg).
set -euo pipefail
CARGO_DEB_VERSION=3.8.0
if ! command -v cargo-deb >/dev/null 2>&1 || [ "$(cargo-deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi
cargo-deb --version
