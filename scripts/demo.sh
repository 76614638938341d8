#!/usr/bin/env bash
# Demo: builds gst-ctsr and runs a GStreamer pipeline from the build tree (no install): a
# photograph upscaled x2 by ctsrupscale with the default model, at the fidelity end (t = 0),
# half-way (t = 0.5) and the realness end (t = 1), on the first Vulkan device (lavapipe, on
# the CPU, when there is no GPU). Writes demo-out/: output-t0.png, output-t0.5.png,
# output-t1.png and side-by-side.png (the input upscaled by bicubic, t = 0, 0.5, 1 and their
# difference, on one detailed crop).
# Usage: bash scripts/demo.sh [input.png]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build -Dgst=enabled >/dev/null
meson compile -C build >/dev/null
mkdir -p demo-out
in=${1:-}
if [ -z "$in" ]; then
  # a photograph (halved) from shared/ when present, else GStreamer's test card
  photo=$(ls ../shared/data/photos/sun_hays80/*.jpg 2>/dev/null | head -n 1 || true)
  if [ -n "$photo" ]; then
    in=demo-out/input.png
    /usr/bin/python3 -c "
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
im.resize((im.width // 2, im.height // 2), Image.BICUBIC).save(sys.argv[2])" "$photo" "$in"
  fi
fi
for t in 0 0.5 1; do
  TIMESTEP=$t CTSR_BUILD_DIR=build CTSR_OUT_DIR=demo-out \
    bash pipelines/upscale-image.sh "${in:-}" demo-out/output-t$t.png
done
/usr/bin/python3 pipelines/side-by-side.py "${in:-demo-out/sample.png}" demo-out/output-t0.png \
  demo-out/output-t0.5.png demo-out/output-t1.png demo-out/side-by-side.png
echo "demo: ctsrupscale wrote demo-out/output-t0.png, output-t0.5.png and output-t1.png;" \
  "demo-out/side-by-side.png shows them next to the input upscaled by bicubic"
