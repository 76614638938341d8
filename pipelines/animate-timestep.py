#!/usr/bin/python3
"""Animates ctsrupscale's timestep over the stream with a GStreamer control source.

A GstController InterpolationControlSource (linear) bound to "timestep" with an absolute
direct binding moves t from --start to --end over the clip; the element samples it at each
frame's stream time (gst_object_sync_values). Every frame's t is printed. The result goes to
a Motion JPEG AVI (default) or, with --display, to the screen (needs a display).

Usage: python3 pipelines/animate-timestep.py [--frames 20] [--fps 10] [--out FILE] [--display]
Needs PyGObject with GStreamer (python3-gi, gir1.2-gstreamer-1.0); use the python3 that has
them (Debian's /usr/bin/python3).
"""
import argparse
import os
import sys

import ctsr_env

ctsr_env.setup()

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstController", "1.0")
from gi.repository import GLib, Gst, GstController  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=90)
    ap.add_argument("--start", type=float, default=0.0, help="timestep at the first frame")
    ap.add_argument("--end", type=float, default=1.0, help="timestep at the last frame")
    ap.add_argument("--out", default=os.path.join(ctsr_env.OUT_DIR, "animated.avi"))
    ap.add_argument("--display", action="store_true", help="show instead of writing a file")
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("ctsrupscale") is None:
        sys.exit("ctsrupscale not found: build it or set CTSR_BUILD_DIR / GST_PLUGIN_PATH")
    sink = ("videoconvert ! autovideosink" if args.display else
            "videoconvert ! jpegenc ! avimux ! filesink location=\"%s\"" % args.out)
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=%d pattern=smpte ! video/x-raw,width=%d,height=%d,"
        "framerate=%d/1 ! ctsrupscale name=up ! %s"
        % (args.frames, args.width, args.height, args.fps, sink))
    up = pipeline.get_by_name("up")

    # t goes linearly from start (first frame) to end (last frame)
    last = Gst.util_uint64_scale(max(args.frames - 1, 1), Gst.SECOND, args.fps)
    cs = GstController.InterpolationControlSource()
    cs.set_property("mode", GstController.InterpolationMode.LINEAR)
    cs.set(0, args.start)
    cs.set(last, args.end)
    up.add_control_binding(GstController.DirectControlBinding.new_absolute(up, "timestep", cs))

    def on_buffer(pad, info):
        buf = info.get_buffer()
        print("frame at %.2f s: timestep %.3f" % (buf.pts / Gst.SECOND,
                                                  up.get_property("timestep")))
        return Gst.PadProbeReturn.OK

    up.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    loop = GLib.MainLoop()
    status = {"ok": True}

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print("error: %s\n%s" % (err.message, debug), file=sys.stderr)
            status["ok"] = False
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    ctsr_env.play(pipeline, loop)
    if status["ok"] and not args.display:
        print("wrote %s" % args.out)
    sys.exit(0 if status["ok"] else 1)


if __name__ == "__main__":
    main()
