#!/usr/bin/env bash
# Runs C tests under valgrind memcheck: any invalid read or write, use of uninitialised
# memory, or definitely / indirectly lost block fails the test. Suppressions
# (tests/valgrind.supp) cover only one-time allocations and a known false positive of the
# system libraries (glibc's loader, GLib/GStreamer type registration, lavapipe's LLVM).
# Usage: bash scripts/memcheck.sh [build-dir] [meson test names...]
#   default tests: model-load golden-reference fuzz-corpus engine-api engine-faults
#   e.g. bash scripts/memcheck.sh build gst-errors gst-faults   (slow: lavapipe under valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
tests=("$@")
((${#tests[@]})) || tests=(model-load golden-reference fuzz-corpus engine-api engine-faults)
wrapper="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
wrapper+=" --show-leak-kinds=definite,indirect --track-origins=no --num-callers=40"
wrapper+=" --suppressions=$PWD/tests/valgrind.supp"
# GStreamer tests: no fork per test (valgrind follows one process), GLib's slice allocator off
GST_CHECK_NO_FORK=1 CK_FORK=no G_SLICE=always-malloc G_DEBUG=gc-friendly \
  meson test -C "$build" --wrapper "$wrapper" --timeout-multiplier 20 --print-errorlogs \
  "${tests[@]}"
