#!/usr/bin/python3
"""Changes ctsrupscale's timestep live while a pipeline plays.

A live test pattern is upscaled and shown (autovideosink; needs a display). Every --period
seconds timestep moves along a triangle wave 0 -> 1 -> 0; numbers typed on stdin (0..1) set it
directly. timestep is GST_PARAM_MUTABLE_PLAYING: a change applies from the next frame and
costs nothing (no pipeline rebuild). --headless uses fakesink and stops after --duration.

Usage: python3 pipelines/live-timestep.py [--duration 0] [--period 0.5] [--headless]
Needs PyGObject with GStreamer (python3-gi, gir1.2-gstreamer-1.0).
"""
import argparse
import sys

import ctsr_env

ctsr_env.setup()

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=0.0, help="seconds; 0: until Ctrl-C")
    ap.add_argument("--period", type=float, default=0.5, help="seconds between changes")
    ap.add_argument("--steps", type=int, default=8, help="changes from 0 to 1")
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=90)
    ap.add_argument("--headless", action="store_true", help="fakesink instead of the screen")
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("ctsrupscale") is None:
        sys.exit("ctsrupscale not found: build it or set CTSR_BUILD_DIR / GST_PLUGIN_PATH")
    sink = "fakesink sync=true" if args.headless else "autovideosink"
    pipeline = Gst.parse_launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,"
        "framerate=10/1 ! ctsrupscale name=up timestep=0 ! videoconvert ! %s"
        % (args.width, args.height, sink))
    up = pipeline.get_by_name("up")
    loop = GLib.MainLoop()
    status = {"ok": True, "step": 0, "frames": 0}

    def count(pad, info):
        status["frames"] += 1
        return Gst.PadProbeReturn.OK

    up.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, count)

    def tick():
        n = args.steps
        k = status["step"] % (2 * n)
        t = (k if k <= n else 2 * n - k) / n
        status["step"] += 1
        up.set_property("timestep", t)
        print("timestep %.3f (%d frames out so far)" % (up.get_property("timestep"),
                                                       status["frames"]))
        return True

    def on_stdin(source, condition):
        line = sys.stdin.readline()
        if not line:
            return False
        try:
            up.set_property("timestep", min(max(float(line), 0.0), 1.0))
            print("timestep set to %.3f" % up.get_property("timestep"))
        except ValueError:
            print("type a number in [0, 1]")
        return True

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print("error: %s\n%s" % (err.message, debug), file=sys.stderr)
            status["ok"] = False
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add(int(args.period * 1000), tick)
    if sys.stdin.isatty():
        GLib.io_add_watch(sys.stdin, GLib.IO_IN, on_stdin)
    if args.duration > 0:
        GLib.timeout_add(int(args.duration * 1000), loop.quit)
    ctsr_env.play(pipeline, loop)
    print("%d frames upscaled" % status["frames"])
    if status["frames"] == 0:
        status["ok"] = False
    sys.exit(0 if status["ok"] else 1)


if __name__ == "__main__":
    main()
