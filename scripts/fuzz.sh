#!/usr/bin/env bash
# Fuzzes libctsr's model loader with libFuzzer (clang, AddressSanitizer + UBSan).
# Usage: bash scripts/fuzz.sh [seconds] [build-dir]     (default: 60 s, build-fuzz)
#   FUZZ_ARGS='-runs=20000000' bash scripts/fuzz.sh 0  runs a fixed number of inputs instead
# Builds build-fuzz/fuzz-model, seeds it with tests/fuzz/corpus (tiny valid models of every
# scale, F32 and F16, with and without attention, and one broken variant per defect;
# regenerate with tests/fuzz/make_corpus.py) and tests/fuzz/crashes, and runs; inputs up to
# 8 KiB (FUZZ_MAX_LEN) keep it fast. A crash leaves crash-<hash> in the build directory and exits
# non-zero: add that file to tests/fuzz/crashes/ (the meson test fuzz-corpus replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=${2:-build-fuzz}
mkdir -p "$out/corpus"
out=$(cd "$out" && pwd)
cc=${CLANG:-clang}
# shellcheck disable=SC2046
"$cc" -g -O2 -std=c11 -D_GNU_SOURCE -DCTSR_LIBFUZZER \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iengine -Iengine/include tests/fuzz/fuzz_model.c engine/error.c engine/fp16.c \
  engine/json-strict.c engine/safetensors.c engine/config.c engine/tensors.c engine/model.c \
  engine/film.c engine/ref.c \
  $(pkg-config --cflags --libs json-glib-1.0) -lm -o "$out/fuzz-model"
seeds="$out/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
cp tests/fuzz/corpus/* "$seeds/"
[ -d tests/fuzz/crashes ] && find tests/fuzz/crashes -type f ! -name "*.md" -exec cp {} "$seeds/" \; 2>/dev/null || true
args=(-max_len="${FUZZ_MAX_LEN:-8192}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$out/")
[ "$secs" != 0 ] && args+=(-max_total_time="$secs")
# from the build directory: with -jobs, libFuzzer writes fuzz-<n>.log into the current one
cd "$out"
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1 \
  "$out/fuzz-model" "${args[@]}" ${FUZZ_ARGS:-} "$out/corpus" "$seeds"
