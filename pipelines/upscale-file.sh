#!/usr/bin/env bash
# Upscales a video file x2: decode, ctsrupscale, encode as Motion JPEG in AVI (encoder and
# muxer from gst-plugins-good). Audio is dropped.
#
# Usage: pipelines/upscale-file.sh [INPUT] [OUTPUT.avi]
#   without INPUT a 1 s 160x90 test clip is made first ($CTSR_OUT_DIR/sample.avi)
# Environment: TIMESTEP (0..1, default 0.5), CTSR_BUILD_DIR (default build), CTSR_MODEL_PATH,
#   CTSR_OUT_DIR (default demo-out/pipelines)
# Inputs other than the formats of gst-plugins-base/good (e.g. H.264) need a decoder such as
# gstreamer1.0-libav. On lavapipe (no GPU) keep the input small: 160x90 runs at a few fps.
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "$0")/common.sh"

in=${1:-}
out=${2:-$CTSR_OUT_DIR/upscaled.avi}
if [ -z "$in" ]; then
  in=$CTSR_OUT_DIR/sample.avi
  gst-launch-1.0 -q videotestsrc num-buffers=10 pattern=smpte \
    ! video/x-raw,width=160,height=90,framerate=10/1 ! jpegenc ! avimux \
    ! filesink location="$in"
fi
gst-launch-1.0 -e filesrc location="$in" ! decodebin ! videoconvert \
  ! ctsrupscale timestep="${TIMESTEP:-0.5}" ! videoconvert ! jpegenc ! avimux \
  ! filesink location="$out"
echo "wrote $out"
