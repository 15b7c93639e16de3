#!/usr/bin/env bash
# Builds the release binaries and runs the benchmarks; they print their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
ensure_local_prerequisites

step "release build of the functions, the CLI and the local stack"
cargo build --release --locked --workspace --bins
# The functions again, as sam build builds them (`cargo lambda build --bin X`
# at the root selects the default members, the functions): without the
# CLI's and the local stack's features. The benches run and size these.
step "release build of the functions alone (their deployed features)"
cargo build --release --locked
# Per-record INFO logs would dominate the output; the functions log at WARN here too.
export RUST_LOG="${RUST_LOG:-warn}"
step "dispatch benchmark"
cargo bench --locked -p offers-integration-tests --bench dispatch
step "challenge progress benchmark"
cargo bench --locked -p offers-integration-tests --bench challenge
step "metrics benchmark (a batch's metrics: EMF, DogStatsD over UDP)"
cargo bench --locked -p offers-integration-tests --bench metrics
step "lookup benchmark"
cargo bench --locked -p offers-integration-tests --bench lookup
step "campaign statistics benchmark (function vs bare counter ADDs; event to visible on the local stack)"
cargo bench --locked -p offers-integration-tests --bench stats
step "redemption benchmark (handler vs a bare conditional UpdateItem of the same shape)"
cargo bench --locked -p offers-integration-tests --bench redemption
step "budget benchmark (budgeted redemption vs a bare transaction of the same two writes; unbudgeted vs a bare UpdateItem)"
cargo bench --locked -p offers-integration-tests --bench budget
step "local stack benchmark (offers assign vs bare BatchWriteItem; insert to visible over HTTP)"
cargo bench --locked -p offers-integration-tests --bench stack
step "parallel dispatch benchmark (the dispatcher's ParallelizationFactor 1 vs 4 on the local stack)"
cargo bench --locked -p offers-integration-tests --bench parallel_dispatch
step "always-on benchmark (the chooser and profile updates vs their bare DynamoDB floors; visit to listed offer on the local stack)"
cargo bench --locked -p offers-integration-tests --bench always_on
step "campaign webhook benchmark (500-assignment requests vs bare BatchWriteItem of the same rows)"
cargo bench --locked -p offers-integration-tests --bench webhook
step "CLI memory benchmark (offers assign --dry-run on 100k and 1M rows)"
cargo bench --locked -p offers-cli --bench assign_memory
step "selection benchmark (campaign plan: choice alone, RSS at 1M and 10M users, write vs bare BatchWriteItem)"
cargo bench --locked -p offers-cli --bench selection
step "selection quality (campaign simulate, default world, 200,000 users)"
"${CARGO_TARGET_DIR:-target}/release/offers" campaign simulate
source scripts/lib/obd.sh
ensure_python_tools lint
ensure_obd_sample
step "selection on the Open Bandit Dataset sample (campaign evaluate)"
"${CARGO_TARGET_DIR:-target}/release/offers" campaign evaluate --obd "$OFFERS_OBD_DIR"
step "init time of each function (exec to first Runtime API poll) and binary sizes"
cargo bench --locked -p offers-integration-tests --bench init
