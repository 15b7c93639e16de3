#!/usr/bin/env bash
# Builds the functions for Lambda (provided.al2023, arm64) with
# `sam build` (BuildMethod rust-cargolambda), installing what it needs the
# ordinary way: the SAM CLI, cargo-lambda and zig from PyPI, the aarch64 Rust
# target with rustup. Prints each function's zipped size. Then:
#   sam deploy --config-env dev     (with your AWS profile; see README)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh

ensure_rust
ensure_python_tools build
step "rustup target add aarch64-unknown-linux-gnu"
rustup target add aarch64-unknown-linux-gnu

step "sam validate --lint"
sam validate --lint

step "sam build (arm64, release profile of Cargo.toml)"
sam build --beta-features "$@"

step "function sizes"
for dir in .aws-sam/build/*Function; do
  [ -f "$dir/bootstrap" ] || continue
  raw=$(stat -c %s "$dir/bootstrap")
  zipped=$(python3 -c "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))" "$dir/bootstrap")
  printf '  %-28s bootstrap %6.2f MiB, zipped %6.2f MiB (%s)\n' "$(basename "$dir")" \
    "$(echo "$raw/1048576" | bc -l)" "$(echo "$zipped/1048576" | bc -l)" "$(file -b "$dir/bootstrap" | cut -d, -f1-2)"
done
