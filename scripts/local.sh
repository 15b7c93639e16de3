#!/usr/bin/env bash
# Runs the whole system on this machine: installs what is missing (Java 17,
# Node.js, DynamoDB Local), builds the functions and the CLI, then starts the
# local stack (DynamoDB Local, the tables of template.yaml, the sample
# catalog, the three functions, the stream mapping, the HTTP APIs on
# localhost). Arguments go to local-stack (--help lists them). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh

ensure_local_prerequisites

step "cargo build (the functions, the CLI and the local stack)"
cargo build --workspace --bins --locked

exec target/debug/local-stack "$@"
