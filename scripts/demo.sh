#!/usr/bin/env bash
# Demo: builds gst-ctsr and upscales a photograph x2 with the default model on the first
# Vulkan device (lavapipe, on the CPU, when there is no GPU). Writes demo-out/.
# Usage: bash scripts/demo.sh [input.png]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
mkdir -p demo-out
in=${1:-}
if [ -z "$in" ]; then
  # a photograph from shared/ when present, else a synthetic test card
  in=demo-out/input.png
  photo=$(ls ../shared/data/photos/sun_hays80/*.jpg 2>/dev/null | head -n 1 || true)
  /usr/bin/python3 - "$photo" "$in" <<'PY'
import sys
from PIL import Image, ImageDraw
src, dst = sys.argv[1], sys.argv[2]
if src:
    im = Image.open(src).convert("RGB")
    im = im.resize((im.width // 2, im.height // 2), Image.BICUBIC)
else:
    im = Image.new("RGB", (320, 200))
    d = ImageDraw.Draw(im)
    for i in range(0, 320, 8):
        d.line([(i, 0), (319 - i, 199)], fill=(i * 4 % 256, 128, 255 - i * 4 % 256))
    d.text((20, 90), "gst-ctsr", fill=(255, 255, 255))
im.save(dst)
PY
fi
for t in 0 1; do
  CTSR_MODEL=models/ctsr-x2-interim.safetensors ./build/engine/ctsr-upscale --timestep $t "$in" demo-out/output-t$t.png
done
echo "demo: wrote demo-out/output-t0.png and demo-out/output-t1.png (x2 of $in)"
