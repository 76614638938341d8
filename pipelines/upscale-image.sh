#!/usr/bin/env bash
# Upscales a PNG image x2 (pngdec, ctsrupscale, pngenc).
#
# Usage: pipelines/upscale-image.sh [INPUT.png] [OUTPUT.png]
#   without INPUT a 160x90 test image is made first ($CTSR_OUT_DIR/sample.png)
# Environment: TIMESTEP (default 0.5), CTSR_BUILD_DIR, CTSR_MODEL_PATH, CTSR_OUT_DIR
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "$0")/common.sh"

in=${1:-}
out=${2:-$CTSR_OUT_DIR/upscaled.png}
if [ -z "$in" ]; then
  in=$CTSR_OUT_DIR/sample.png
  gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte \
    ! video/x-raw,width=160,height=90 ! pngenc ! filesink location="$in"
fi
gst-launch-1.0 -q filesrc location="$in" ! pngdec ! videoconvert \
  ! ctsrupscale timestep="${TIMESTEP:-0.5}" ! videoconvert ! pngenc \
  ! filesink location="$out"
echo "wrote $out"
