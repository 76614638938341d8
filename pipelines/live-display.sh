#!/usr/bin/env bash
# Live test pattern upscaled x2 on screen (autovideosink). Needs a display (X11 or Wayland);
# on a headless machine run it with CTSR_SINK=fakesink NUM_BUFFERS=20 to check the pipeline.
# QoS is on: when the device is slower than real time (lavapipe), late frames are dropped.
#
# Usage: pipelines/live-display.sh
# Environment: TIMESTEP (default 0.5), CTSR_SINK (default autovideosink), NUM_BUFFERS
#   (default -1: until interrupted), CTSR_BUILD_DIR, CTSR_MODEL_PATH
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "$0")/common.sh"

gst-launch-1.0 videotestsrc is-live=true pattern=ball num-buffers="${NUM_BUFFERS:--1}" \
  ! video/x-raw,width=160,height=90,framerate=10/1 \
  ! ctsrupscale timestep="${TIMESTEP:-0.5}" ! videoconvert ! "${CTSR_SINK:-autovideosink}"
