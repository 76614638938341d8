#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with warnings as errors, runs the C tests
# (meson test) and the Python tests (pytest). Exits non-zero if anything fails.
# Usage: bash scripts/test.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${1:-build-test}
if [ -d "$build" ]; then
  meson setup --reconfigure "$build" -Dwerror=true -Dgst=enabled >/dev/null
else
  meson setup "$build" -Dwerror=true -Dgst=enabled >/dev/null
fi
meson compile -C "$build"
status=0
meson test -C "$build" --print-errorlogs || status=1
# the Python tests (training/): Debian's interpreter, which has python3-torch; the ones that run
# the element (test_ctsr_eval) use this build's plugin
CTSR_BUILD_DIR=$build /usr/bin/python3 -m pytest -q tests/python || status=1
exit $status
