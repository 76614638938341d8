# shellcheck shell=bash
# Sourced by the example scripts. Uses the uninstalled plugin when the build tree has one
# (CTSR_BUILD_DIR, default "build", relative to the repository root) together with
# models/ctsr-x2.safetensors (CTSR_MODEL_PATH unless already set, so that an installed model does
# not take its place); otherwise the installed element and model.
CTSR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ctsr_build=${CTSR_BUILD_DIR:-build}
case $ctsr_build in /*) ;; *) ctsr_build=$CTSR_ROOT/$ctsr_build ;; esac
if [ -e "$ctsr_build/gst/libgstctsr.so" ]; then
  export GST_PLUGIN_PATH="$ctsr_build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export CTSR_MODEL_PATH=${CTSR_MODEL_PATH:-$CTSR_ROOT/models/ctsr-x2.safetensors}
fi
if ! gst-inspect-1.0 ctsrupscale >/dev/null 2>&1; then
  echo "ctsrupscale not found: build it (meson setup build && meson compile -C build)," \
    "set CTSR_BUILD_DIR to your build directory, or install it (meson install -C build)" >&2
  exit 1
fi
# outputs of the examples (demo-out/ is ignored by git)
CTSR_OUT_DIR=${CTSR_OUT_DIR:-$CTSR_ROOT/demo-out/pipelines}
mkdir -p "$CTSR_OUT_DIR"
