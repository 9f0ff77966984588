#!/usr/bin/env bash
# Checks the Python and JavaScript guest SDKs end to end, from a clean state:
#
#   1. a virtualenv under $WAYSTREAM_TARGET/polyglot/venv with componentize-py 0.25, pytest
#      and guest-sdk/python; an npm folder $WAYSTREAM_TARGET/polyglot/node with guest-sdk/js
#      (which brings componentize-js 0.23 and rolldown);
#   2. the SDKs' own tests (pytest, node --test) and the examples' native tests;
#   3. the components: examples/python-stops → python-stops.wasm, examples/js-stops →
#      js-stops.wasm, the hostile guests → python-raises.wasm, js-throws.wasm, all into
#      $WAYSTREAM_TARGET/modules;
#   4. `waystream test` on the examples' cases (with speed.wasm from the same folder, which
#      `cargo xtask build-transforms` writes), and on the hostile guests' cases, whose dead
#      letters must carry the exception ("ValueError: bad point" + traceback, "Error: bad
#      point" + stack);
#   5. a project generated from each of templates/python and templates/js ({{name}} and
#      {{sdk}} substituted), tested, built and run through `waystream test` as its README says.
#
# Environment: WAYSTREAM_TARGET (default target), WAYSTREAM_BIN (default
# $WAYSTREAM_TARGET/debug/waystream). Needs python3 (3.10+), node 20+ and npm, and the
# package registries (PyPI, npm) the first time. Prints each step's time; exits non-zero
# at the first failure. Writes nothing into the source tree.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${WAYSTREAM_TARGET:-target}
mkdir -p "$TARGET"
TARGET=$(cd "$TARGET" && pwd)
BIN=${WAYSTREAM_BIN:-$TARGET/debug/waystream}
POLY=$TARGET/polyglot
MODULES=$TARGET/modules
VENV=$POLY/venv
NODE=$POLY/node
WORK=$NODE/work # projects run from here, so `@waystream/guest` resolves to $NODE/node_modules
PY=$VENV/bin/python
BUILD_JS=$NODE/node_modules/.bin/waystream-guest-js
# Keep bytecode and pytest's cache out of the source tree.
export PYTHONDONTWRITEBYTECODE=1
PYTEST=(-m pytest -q -p no:cacheprovider)

TOTAL_START=$(date +%s%N)
step() {
  local name=$1
  shift
  local start
  start=$(date +%s%N)
  echo "==> $name"
  if ! "$@"; then
    echo "FAILED: $name" >&2
    exit 1
  fi
  printf '    %s: %.1f s\n' "$name" "$(($(date +%s%N) - start))e-9"
}

size_of() { printf '%s: %.1f MB' "$(basename "$1")" "$(($(stat -c %s "$1") / 1000))e-3"; }

setup_python() {
  [[ -x $PY ]] || python3 -m venv "$VENV"
  "$PY" -m pip install -q --disable-pip-version-check "componentize-py>=0.25,<0.26" pytest "setuptools>=61" wheel
  # From a copy: pip builds a local folder in place (build/, *.egg-info), and this script
  # writes nothing into the source tree. --no-build-isolation: the venv's setuptools
  # builds it, no download per run.
  rm -rf "$POLY/guest-sdk-python"
  mkdir -p "$POLY/guest-sdk-python"
  (cd guest-sdk/python && tar --exclude=build --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache -cf - .) |
    (cd "$POLY/guest-sdk-python" && tar -xf -)
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps "$POLY/guest-sdk-python"
}

setup_node() {
  mkdir -p "$NODE"
  [[ -f $NODE/package.json ]] || echo '{"private": true}' >"$NODE/package.json"
  # --install-links copies the SDK as npm would install it from the registry (its `files`
  # only); remove the old copy first, or npm may keep it as "up to date".
  rm -rf "$NODE/node_modules/@waystream"
  (cd "$NODE" && npm install --silent --no-audit --no-fund --install-links "$ROOT/guest-sdk/js")
}

python_sdk_tests() { (cd guest-sdk/python && "$PY" "${PYTEST[@]}"); }
python_example_tests() { (cd examples/python-stops && "$PY" "${PYTEST[@]}"); }
js_sdk_tests() { node --test guest-sdk/js/test/; }

# A copy of a JS project under $WORK (sources only), so its imports resolve to $NODE.
copy_js_project() {
  local src=$1 dest=$WORK/$2
  rm -rf "$dest"
  mkdir -p "$dest"
  (cd "$src" && tar --exclude=node_modules --exclude='*.wasm' -cf - .) | (cd "$dest" && tar -xf -)
}

js_example_tests() {
  copy_js_project examples/js-stops js-stops
  (cd "$WORK/js-stops" && node --test)
}

build_py() { "$PY" -m waystream_guest build -q "$1" -o "$2" && echo "    $(size_of "$2")"; }
build_js() { "$BUILD_JS" build -q "$1" -o "$2" && echo "    $(size_of "$2")"; }

need_host() {
  if [[ ! -x $BIN ]]; then
    echo "no host binary at $BIN (cargo build -p waystream, or set WAYSTREAM_BIN)" >&2
    return 1
  fi
  if [[ ! -f $MODULES/speed.wasm ]]; then
    echo "no $MODULES/speed.wasm, which the examples' cases chain (cargo xtask build-transforms)" >&2
    return 1
  fi
}

host_test() { "$BIN" test "$@" --modules "$MODULES"; }

# Runs a hostile guest's case (writing its dead letters into a copy) and checks the cause,
# as the rejected.ndjson holds it (JSON: the host's escaped newline is `\\n`). Not compared
# whole: stack lines name lines of the bundle, which move with any change to the SDK.
hostile_case() {
  local case_dir=$1 expected=$2 copy
  copy=$POLY/cases/$(basename "$case_dir")
  rm -rf "$copy"
  mkdir -p "$copy"
  cp "$case_dir"/case.toml "$case_dir"/input.ndjson "$copy"/
  "$BIN" test "$copy" --modules "$MODULES" --update >/dev/null
  if ! grep -qF -- "$expected" "$copy/rejected.ndjson"; then
    echo "the dead letters of $case_dir do not carry: $expected" >&2
    head -c 1500 "$copy/rejected.ndjson" >&2
    return 1
  fi
  echo "    cause: $(grep -o '"cause":".\{0,160\}' "$copy/rejected.ndjson" | head -1 | cut -c 10-)…"
}

# Copies templates/<lang> to <dest>, substituting {{name}} and {{sdk}} in every file.
generate() {
  local lang=$1 name=$2 dest=$3 sdk=$ROOT/guest-sdk/$1 file
  rm -rf "$dest"
  mkdir -p "$dest"
  (cd "templates/$lang" && find . -type f) | while read -r file; do
    mkdir -p "$dest/$(dirname "$file")"
    sed -e "s|{{name}}|$name|g" -e "s|{{sdk}}|$sdk|g" "templates/$lang/$file" >"$dest/$file"
  done
  if grep -rn '{{' "$dest"; then
    echo "placeholders left in $dest" >&2
    return 1
  fi
}

# The template's README, step by step (the tools from this script's installs).
template_python() {
  local dest=$POLY/templates/tpl-python
  generate python tpl-python "$dest"
  (
    cd "$dest"
    "$PY" "${PYTEST[@]}"
    build_py transform.py modules/tpl-python.wasm
    "$BIN" test tests --modules modules
  )
}

template_js() {
  local dest=$WORK/tpl-js
  generate js tpl-js "$dest"
  (
    cd "$dest"
    node --test
    build_js transform.js modules/tpl-js.wasm
    "$BIN" test tests --modules modules
  )
}

step "python: venv, componentize-py 0.25, pytest, guest-sdk/python" setup_python
step "node: guest-sdk/js with componentize-js 0.23" setup_node
step "python: SDK tests" python_sdk_tests
step "python: example tests" python_example_tests
step "js: SDK tests" js_sdk_tests
step "js: example tests" js_example_tests
mkdir -p "$MODULES"
step "build python-stops.wasm" build_py examples/python-stops/stops.py "$MODULES/python-stops.wasm"
step "build js-stops.wasm" build_js examples/js-stops/stops.js "$MODULES/js-stops.wasm"
step "build python-raises.wasm" build_py guest-sdk/python/tests/guests/raises.py "$MODULES/python-raises.wasm"
step "build js-throws.wasm" build_js guest-sdk/js/test/guests/throws.js "$MODULES/js-throws.wasm"
step "host: $BIN and speed.wasm" need_host
step "waystream test examples/python-stops" host_test examples/python-stops
step "waystream test examples/js-stops" host_test examples/js-stops
step "hostile: python-raises dead letters" hostile_case guest-sdk/python/tests/guests/cases/raises \
  'module error: ValueError: bad point\\nTraceback (most recent call last):\\n  File \"/1/raises.py\", line'
step "hostile: js-throws dead letters" hostile_case guest-sdk/js/test/guests/cases/throws \
  'module error: Error: bad point\\n  checkPoint@throws.bundle.js:'
step "template: python" template_python
step "template: js" template_js
printf 'polyglot checks passed in %.0f s\n' "$(($(date +%s%N) - TOTAL_START))e-9"
