#!/usr/bin/env bash
# Builds the release binaries and runs the benchmarks; they print their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
ensure_rust
ensure_java
ensure_node
install_dynamodb_local

step "release build of the functions"
cargo build --release --locked --workspace --bins
step "dispatch benchmark"
cargo bench --locked -p offers-integration-tests --bench dispatch
