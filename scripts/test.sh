#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit tests and the
# end-to-end tests on the real DynamoDB Local (installed on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
source scripts/lib/obd.sh

ensure_local_prerequisites
ensure_python_tools lint
# The Open Bandit Dataset sample `offers campaign evaluate` is tested on.
ensure_obd_sample

step "template.yaml: sam validate --lint, cfn-lint (Observability=cloudwatch, the default)"
sam validate --lint --template template.yaml
cfn-lint template.yaml

step "template.yaml: sam validate --lint, cfn-lint (Observability=datadog)"
# sam validate takes no parameters: lint a copy whose default is datadog, with
# example (not real) values for the extension layer and the API key secret.
datadog_template="$(mktemp --suffix=.yaml)"
trap 'rm -f "$datadog_template"' EXIT
sed 's/^    Default: cloudwatch$/    Default: datadog/' template.yaml > "$datadog_template"
grep -q '^    Default: datadog$' "$datadog_template"
sam validate --lint --template "$datadog_template"
cfn-lint "$datadog_template" --parameters Observability=datadog \
  DatadogExtensionLayerArn=arn:aws:lambda:us-east-1:111122223333:layer:Datadog-Extension-ARM:1 \
  DatadogApiKeySecretArn=arn:aws:secretsmanager:us-east-1:111122223333:secret:datadog-api-key-AbCdEf

step "cargo fmt --check"
cargo fmt --all -- --check

step "the domain crate depends on no AWS or Lambda crate"
if cargo tree --locked -p offers-domain -e normal --prefix none | grep -Ei '^(aws|lambda)'; then
  echo "error: offers-domain must not depend on AWS or Lambda crates (listed above)" >&2
  exit 1
fi

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (the function binaries the end-to-end tests run)"
cargo build --workspace --bins --locked

step "cargo test (unit and end-to-end on DynamoDB Local)"
cargo test --workspace --locked
