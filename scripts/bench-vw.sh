#!/usr/bin/env bash
# Vowpal Wabbit beside the engine on the worlds of `offers campaign simulate`
# (a bench, not part of CI). Installs `vowpalwabbit` from PyPI into the
# git-ignored venv .cache/vw-venv (as scripts/lib/obd.sh fetches the OBD
# sample into .cache), builds the simulation alone in release (the domain
# crate's example: no AWS SDK to build), and for each world and seed:
# exports the world (the same users and outcome draws), prints the engine's
# and the baselines' figures, then plays each Vowpal Wabbit setting on it
# (scripts/bench_vw.py). One process at a time: the machine may be shared.
#
#   scripts/bench-vw.sh [SEEDS] [USERS] [WORLDS]
#   e.g. scripts/bench-vw.sh "1 2 3 4 5" 100000 "segments long-pool shift"
# WORLDS may include `sanity`: a check of the driver itself on a world with a
# strong signal (scripts/vw_sanity_world.py; SANITY_RATES="HIGH LOW", default
# "0.3 0.03"), Vowpal Wabbit only.
# Extra Vowpal Wabbit settings: VW_SETTINGS="name=--args ..." (space-free
# names; one per line).
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS="${1:-1 2 3 4 5 6 7 8 9 10}"
USERS="${2:-100000}"
WORLDS="${3:-segments long-pool shift}"
DAYS=20
VW_VERSION=9.11.9
VENV="$PWD/.cache/vw-venv"
OUT="$PWD/.cache/bench-vw"

if ! "$VENV/bin/python" -c "import vowpalwabbit" 2>/dev/null; then
  echo "installing vowpalwabbit==$VW_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "vowpalwabbit==$VW_VERSION"
fi
cargo build --release --locked -p offers-domain --example simulate >&2
mkdir -p "$OUT"

DEFAULT_SETTINGS='squarecb=--squarecb
squarecb-gamma100=--squarecb --gamma_scale 100
squarecb-l0.05=--squarecb -l 0.05
epsilon0.05=--epsilon 0.05
epsilon0.05-l0.05=--epsilon 0.05 -l 0.05 --cb_type mtr
personalizer=--epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr'
SETTINGS="${VW_SETTINGS:-$DEFAULT_SETTINGS}"
mapfile -t SETTING_LIST <<<"$SETTINGS"

for world in $WORLDS; do
  if [ "$world" = sanity ]; then
    file="$OUT/sanity.jsonl"
    # shellcheck disable=SC2086 # two numbers
    python3 scripts/vw_sanity_world.py "$file" ${SANITY_RATES:-0.3 0.03}
    "$VENV/bin/python" scripts/bench_vw.py "$file" "${SETTING_LIST[@]}"
    rm -f "$file"
    continue
  fi
  for seed in $SEEDS; do
    file="$OUT/$world-$seed-$USERS.jsonl"
    # The engine's and the baselines' figures, one JSON line.
    target/release/examples/simulate "$world" "$seed" "$USERS" "$DAYS" --export "$file" \
      | python3 -c '
import json, sys
d = json.load(sys.stdin)
for p in d["policies"]:
    print(json.dumps({"world": d["world"]["kind"], "seed": d["world"]["seed"], "setting": p["name"],
                      "reward": p["reward"], "vsOracle": round(p["vsOracle"], 4),
                      "lastFifthVsOracle": round(p["lastFifthVsOracle"], 4)}))'
    "$VENV/bin/python" scripts/bench_vw.py "$file" "${SETTING_LIST[@]}"
    rm -f "$file"
  done
done
