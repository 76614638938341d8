"""Shared by the Python examples: run against the uninstalled plugin when the build tree has
one (CTSR_BUILD_DIR, default "build", relative to the repository root), with
models/ctsr-x2.safetensors (CTSR_MODEL_PATH unless already set). Import before Gst.init()."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.environ.get("CTSR_OUT_DIR", os.path.join(ROOT, "demo-out", "pipelines"))


def setup():
    build = os.environ.get("CTSR_BUILD_DIR", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    plugin_dir = os.path.join(build, "gst")
    if os.path.exists(os.path.join(plugin_dir, "libgstctsr.so")):
        paths = [plugin_dir] + [p for p in os.environ.get("GST_PLUGIN_PATH", "").split(":") if p]
        os.environ["GST_PLUGIN_PATH"] = ":".join(paths)
        os.environ.setdefault("CTSR_MODEL_PATH",
                              os.path.join(ROOT, "models", "ctsr-x2.safetensors"))
    os.makedirs(OUT_DIR, exist_ok=True)


def play(pipeline, loop):
    """Sets the pipeline PLAYING and runs the main loop until it quits (or Ctrl-C), then sets it
    to NULL. If the state change fails, prints the error from the bus (model file, Vulkan
    device) and exits with status 1."""
    from gi.repository import Gst  # after Gst.init() in the caller

    bus = pipeline.get_bus()
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
        if msg:
            print("error: %s" % msg.parse_error()[0].message, file=sys.stderr)
        pipeline.set_state(Gst.State.NULL)
        sys.exit(1)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    pipeline.set_state(Gst.State.NULL)
