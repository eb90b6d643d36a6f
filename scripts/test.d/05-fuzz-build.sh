#!/usr/bin/env bash
# The protocol decoder's fuzz target must keep building (it is outside the workspace).
# Running it for real: `cargo install cargo-fuzz && cd protocol/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode`.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO_TARGET_DIR="$PWD/target/fuzz" cargo build --quiet --manifest-path protocol/fuzz/Cargo.toml
echo "fuzz target protocol/fuzz decode builds"
