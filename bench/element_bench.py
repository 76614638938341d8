"""Frames per second through the element: videotestsrc ! I420 WxH ! ctsrupscale ! fakesink
sync=false, the pipeline of issue 8, for each model; with the model load, the first-frame
latency and the cost of changing the timestep every frame.

    /usr/bin/python3 bench/element_bench.py [--build-dir build] [--models tiny,default]
        [--size 320x180] [--frames 30] [--repeats 2]

Uses the plugin of the build directory (GST_PLUGIN_PATH, a registry file of its own) and the
source tree's models (NAME is models/ctsr-x2-NAME.safetensors, `default` ctsr-x2, or a path).
For each model, --repeats pairs of runs, alternating: t fixed at 0.5, then t changed before
every frame (0.37 k mod 1 for frame k; the element applies it at that frame). Both runs set
the property from a pad probe before every frame (the fixed run sets 0.5 again, which the
element recognises as unchanged), so the Python callback's own cost is in both and the ratio
is the element's cost of a new t.
Each run goes NULL -> READY (the model load: pipelines and a warm-up frame) -> PLAYING -> EOS
and is timed with a timestamp per output buffer (fakesink handoff):

  load        parse_launch + NULL -> READY (the model is loaded at the first caps query)
  first       READY -> the first output buffer (negotiation, frame buffers, the first frame)
  fps         steady state: (frames - 1) / (last buffer - first buffer), start-up excluded
  fps+start   frames / (EOS - start of the load), start-up included

Medians over the repeats; "t every frame" is the ratio of the steady fps with t changing to
the fps with t fixed (1.00 = free). Prints a table and one JSON line per model.
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def model_path(name):
    if os.path.exists(name):
        return os.path.abspath(name)
    f = "ctsr-x2.safetensors" if name == "default" else f"ctsr-x2-{name}.safetensors"
    p = os.path.join(REPO, "models", f)
    if not os.path.exists(p):
        sys.exit(f"no model {name} ({p})")
    return p


def run_once(Gst, model, w, h, frames, vary):
    # the element opens the device and loads the model at the first caps query, which
    # parse_launch's linking already makes, else at NULL -> READY: both are the load
    t0 = time.perf_counter()
    pipe = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} pattern=smpte ! "
        f"video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! "
        f'ctsrupscale name=up model-location="{model}" timestep=0.5 ! '
        "fakesink name=sink sync=false signal-handoffs=true")
    up, sink = pipe.get_by_name("up"), pipe.get_by_name("sink")
    stamps, sizes = [], []

    def handoff(_sink, buf, _pad):
        stamps.append(time.perf_counter())
        sizes.append(buf.get_size())
    sink.connect("handoff", handoff)
    count = [0]

    def probe(_pad, _info):
        up.set_property("timestep", (0.37 * count[0]) % 1.0 if vary else 0.5)
        count[0] += 1
        return Gst.PadProbeReturn.OK
    up.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    if pipe.set_state(Gst.State.READY) == Gst.StateChangeReturn.FAILURE:
        sys.exit(f"ctsrupscale could not load {model}")
    t_ready = time.perf_counter()
    pipe.set_state(Gst.State.PLAYING)
    msg = pipe.get_bus().timed_pop_filtered(600 * Gst.SECOND,
                                            Gst.MessageType.EOS | Gst.MessageType.ERROR)
    t_end = time.perf_counter()
    pipe.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        sys.exit(f"pipeline failed: {msg.parse_error() if msg else 'timeout'}")
    ow, oh = 2 * w, 2 * h  # the shipped models are x2
    want = ow * oh + 2 * ((ow + 1) // 2) * ((oh + 1) // 2)  # I420
    if len(stamps) != frames or any(s != want for s in sizes):
        sys.exit(f"expected {frames} buffers of {want} bytes, got {len(stamps)}: {set(sizes)}")
    return {"load_s": t_ready - t0, "first_s": stamps[0] - t_ready,
            "fps": (frames - 1) / (stamps[-1] - stamps[0]),
            "fps_startup": frames / (t_end - t0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.environ.get("CTSR_BUILD_DIR", "build"))
    ap.add_argument("--models", default="tiny,default")
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    build = a.build_dir if os.path.isabs(a.build_dir) else os.path.join(REPO, a.build_dir)
    plugin_dir = os.path.join(build, "gst")
    if not os.path.exists(os.path.join(plugin_dir, "libgstctsr.so")):
        sys.exit(f"no plugin in {plugin_dir}: meson setup {a.build_dir} -Dgst=enabled && "
                 f"meson compile -C {a.build_dir}")
    os.environ["GST_PLUGIN_PATH"] = plugin_dir
    os.environ["GST_REGISTRY"] = os.path.join(build, "bench-registry.bin")
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    w, h = (int(x) for x in a.size.split("x"))

    results = []
    for name in a.models.split(","):
        model = model_path(name)
        fixed, vary = [], []
        for _ in range(a.repeats):
            fixed.append(run_once(Gst, model, w, h, a.frames, False))
            vary.append(run_once(Gst, model, w, h, a.frames, True))
        med = {k: statistics.median(r[k] for r in fixed) for k in fixed[0]}
        med_vary = statistics.median(r["fps"] for r in vary)
        res = dict(model=name, size=a.size, out=f"{2 * w}x{2 * h}", frames=a.frames,
                   repeats=a.repeats, **med, fps_t_every_frame=med_vary,
                   t_every_frame_ratio=med_vary / med["fps"],
                   fps_runs=[round(r["fps"], 3) for r in fixed],
                   fps_t_every_frame_runs=[round(r["fps"], 3) for r in vary])
        results.append(res)

    print(f"\nI420 {a.size} -> {2 * w}x{2 * h} through ctsrupscale, {a.frames} frames, "
          f"median of {a.repeats}\n")
    print(f"{'model':10s} {'fps':>7s} {'fps+start':>10s} {'load s':>7s} {'first ms':>9s} "
          f"{'fps, t every frame':>19s} {'ratio':>6s}")
    for r in results:
        print(f"{r['model']:10s} {r['fps']:7.2f} {r['fps_startup']:10.2f} {r['load_s']:7.2f} "
              f"{1e3 * r['first_s']:9.0f} {r['fps_t_every_frame']:19.2f} "
              f"{r['t_every_frame_ratio']:6.3f}")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
