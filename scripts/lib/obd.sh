# The Open Bandit Dataset's small sample (ZOZOTOWN; CC BY 4.0), for
# `offers campaign evaluate --obd` and its test. It ships inside the source
# distribution of the `obp` package on PyPI: pip downloads that sdist (no
# install, no dependencies) into the git-ignored .cache/obd, and only
# obp/dataset/obd/{random,bts}/{all,men,women}/ is extracted, to
# .cache/obd/open_bandit_dataset. Never committed.
# Sourced after prerequisites.sh (ensure_python_tools gives the venv's pip).

OBD_VERSION=0.5.7
OBD_CACHE="$PWD/.cache/obd"
OBD_DIR="$OBD_CACHE/open_bandit_dataset"

ensure_obd_sample() {
  if [ -f "$OBD_DIR/random/all/all.csv" ] && [ -f "$OBD_DIR/bts/all/all.csv" ]; then
    export OFFERS_OBD_DIR="$OBD_DIR"
    return
  fi
  step "downloading the Open Bandit Dataset sample (obp==$OBD_VERSION sdist) into $OBD_CACHE"
  mkdir -p "$OBD_CACHE"
  local pip="$PYTHON_TOOLS_VENV/bin/pip"
  [ -x "$pip" ] || pip="$(command -v pip3 || command -v pip)"
  "$pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --ignore-requires-python "obp==$OBD_VERSION" --dest "$OBD_CACHE"
  local archive
  archive="$(ls "$OBD_CACHE"/obp-"$OBD_VERSION".tar.gz)"
  rm -rf "$OBD_DIR" "$OBD_CACHE/extract"
  mkdir -p "$OBD_CACHE/extract"
  tar -xzf "$archive" -C "$OBD_CACHE/extract" --wildcards "obp-$OBD_VERSION/obp/dataset/obd/*"
  mv "$OBD_CACHE/extract/obp-$OBD_VERSION/obp/dataset/obd" "$OBD_DIR"
  rm -rf "$OBD_CACHE/extract"
  export OFFERS_OBD_DIR="$OBD_DIR"
}
