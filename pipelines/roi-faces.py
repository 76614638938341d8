#!/usr/bin/python3
"""Regions of interest: faithful (t = 0) faces and text, realistic (t = 1) everything else.

Each frame gets a GstVideoRegionOfInterestMeta per region, with "ctsrupscale" params holding
its timestep; ctsrupscale upscales the frame with that t inside the regions and its own
timestep property elsewhere (a smooth ramp of roi-transition pixels in between), and passes
the regions downstream scaled. Regions: faces found by OpenCV's Haar cascade (--faces; the
cascades of Debian's opencv-data), fixed rectangles (--rect), or, by default, the text sign
this script draws on a photo of Debian's mate-backgrounds.

    python3 pipelines/roi-faces.py                                # photo + sign, sign at t = 0
    python3 pipelines/roi-faces.py --input in.jpg --faces         # faces at t = 0
    python3 pipelines/roi-faces.py --input in.png --rect 40,30,80,60 --rect 200,10,50,50
    python3 pipelines/roi-faces.py --compare demo-out/pipelines/roi-compare.png
        [--width 320] [--t 1] [--roi-t 0] [--transition -1] [--frames 1] [--out FILE]

Frames go through appsrc: Python creates each buffer and attaches the metas before pushing
it (a buffer seen in a pad probe is not writable from PyGObject without gst-python's
overrides, which Debian 12 does not ship, so metas cannot be added there). The last output
frame is written as PNG (--out); --compare also runs the frames without regions (uniform
t) and writes one picture: uniform t, regions, and their difference.
Needs python3-gi, gir1.2-gst-plugins-base-1.0, python3-numpy, python3-opencv, python3-pil
(and opencv-data for --faces); run with Debian's /usr/bin/python3.
"""
import argparse
import os
import sys

import ctsr_env

ctsr_env.setup()

import cv2  # noqa: E402
import gi  # noqa: E402
import numpy as np  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

DEFAULT_PHOTO = "/usr/share/backgrounds/mate/nature/GreenMeadow.jpg"  # mate-backgrounds
CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"  # opencv-data


def load_frame(path, width):
    """RGB frame of `width` pixels (height by the aspect ratio, even)."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit("cannot read %s" % path)
    h = max(2, round(bgr.shape[0] * width / bgr.shape[1] / 2) * 2)
    return cv2.cvtColor(cv2.resize(bgr, (width, h), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def draw_sign(rgb):
    """A white sign with black text on the photo; returns its rectangle (x, y, w, h)."""
    h, w = rgb.shape[:2]
    sw, sh = int(w * 0.42), int(h * 0.3)
    x, y = int(w * 0.52), int(h * 0.12)
    cv2.rectangle(rgb, (x, y), (x + sw, y + sh), (245, 245, 240), -1)
    cv2.rectangle(rgb, (x, y), (x + sw, y + sh), (30, 30, 30), 1)
    scale = sh / 70.0
    for i, line in enumerate(("SLOW", "Path 300 m")):
        cv2.putText(rgb, line, (x + int(6 * scale), y + int((28 + 30 * i) * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale * (0.9 if i == 0 else 0.5), (20, 20, 20),
                    max(1, int(scale * (2 if i == 0 else 1))), cv2.LINE_AA)
    return (x, y, sw, sh)


def find_faces(rgb, cascade):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(16, 16))
    return [tuple(int(v) for v in f) for f in faces]


def upscale(frames, regions_of, args, with_regions):
    """Pushes the frames (with their region metas when with_regions) through ctsrupscale;
    returns the output frames as RGB arrays and the regions the last one carried."""
    h, w = frames[0].shape[:2]
    pipeline = Gst.parse_launch(
        "appsrc name=src format=time caps=video/x-raw,format=RGBA,width=%d,height=%d,"
        "framerate=10/1 ! ctsrupscale name=up ! appsink name=sink sync=false" % (w, h))
    up = pipeline.get_by_name("up")
    up.set_property("timestep", args.t)
    up.set_property("roi-transition", args.transition)
    src, sink = pipeline.get_by_name("src"), pipeline.get_by_name("sink")
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = pipeline.get_bus().timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
        sys.exit("error: %s" % (msg.parse_error()[0].message if msg else "state change"))
    outs, last_regions = [], []
    for i, rgb in enumerate(frames):
        rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        buf = Gst.Buffer.new_wrapped(np.ascontiguousarray(rgba).tobytes())
        buf.pts = i * Gst.SECOND // 10
        buf.duration = Gst.SECOND // 10
        for j, (x, y, rw, rh) in enumerate(regions_of(i, rgb) if with_regions else []):
            meta = GstVideo.buffer_add_video_region_of_interest_meta(buf, "face", x, y, rw, rh)
            meta.id = j
            meta.add_param(Gst.Structure.new_from_string(
                "ctsrupscale, timestep=(double)%r" % args.roi_t))
        src.emit("push-buffer", buf)
        sample = sink.emit("pull-sample")
        if sample is None:
            msg = pipeline.get_bus().timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
            sys.exit("error: %s" % (msg.parse_error()[0].message if msg else "no output"))
        out = sample.get_buffer()
        caps = sample.get_caps().get_structure(0)
        ow, oh = caps.get_value("width"), caps.get_value("height")
        ok, info = out.map(Gst.MapFlags.READ)
        outs.append(np.frombuffer(info.data, np.uint8).reshape(oh, ow, 4)[:, :, :3].copy())
        out.unmap(info)
        last_regions = []
        for k in range(64):  # the regions as they come out (scaled)
            m = GstVideo.buffer_get_video_region_of_interest_meta_id(out, k)
            if m is None:
                break
            last_regions.append((m.x, m.y, m.w, m.h))
    src.emit("end-of-stream")
    pipeline.set_state(Gst.State.NULL)
    return outs, last_regions


def compare_picture(uniform, roi, regions, args, path):
    """uniform | regions | difference (x4), each with the regions outlined on the third."""
    from PIL import Image, ImageDraw

    diff = np.clip(np.abs(uniform.astype(np.int16) - roi.astype(np.int16)) * 4, 0, 255)
    panels = [uniform, roi, diff.astype(np.uint8)]
    titles = ["uniform t = %g" % args.t,
              "t = %g in the regions, %g elsewhere" % (args.roi_t, args.t),
              "|difference| x 4 (regions outlined)"]
    h, w = uniform.shape[:2]
    pad, top = 8, 20
    canvas = Image.new("RGB", (3 * w + 4 * pad, h + top + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (p, title) in enumerate(zip(panels, titles)):
        x0 = pad + i * (w + pad)
        canvas.paste(Image.fromarray(p), (x0, top))
        draw.text((x0, 4), title, fill=(0, 0, 0))
    for (x, y, rw, rh) in regions:
        x0 = pad + 2 * (w + pad)
        draw.rectangle([x0 + x, top + y, x0 + x + rw - 1, top + y + rh - 1], outline=(255, 64, 64))
    # a zoomed crop of the first region's neighbourhood, uniform vs regions, below
    if regions:
        x, y, rw, rh = regions[0]
        m = max(rw, rh) // 4
        x0, y0 = max(0, x - m), max(0, y - m)
        x1, y1 = min(w, x + rw + m), min(h, y + rh + m)
        zoom = max(1, min(3, (3 * w + 2 * pad) // (2 * (x1 - x0))))
        crops = [Image.fromarray(a[y0:y1, x0:x1]).resize(((x1 - x0) * zoom, (y1 - y0) * zoom),
                                                         Image.NEAREST) for a in (uniform, roi)]
        full = Image.new("RGB", (canvas.width, canvas.height + crops[0].height + top + pad),
                         (255, 255, 255))
        full.paste(canvas, (0, 0))
        d = ImageDraw.Draw(full)
        for i, c in enumerate(crops):
            cx = pad + i * (c.width + pad)
            full.paste(c, (cx, canvas.height + top))
            d.text((cx, canvas.height + 4), "%s, x%d crop" % (titles[i], zoom), fill=(0, 0, 0))
        canvas = full
    canvas.save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", help="image (default: a mate-backgrounds photo with a sign)")
    ap.add_argument("--width", type=int, default=320, help="input width (height by aspect)")
    ap.add_argument("--faces", action="store_true", help="regions: OpenCV Haar face cascade")
    ap.add_argument("--rect", action="append", default=[], help="region x,y,w,h (input px)")
    ap.add_argument("--t", type=float, default=1.0, help="timestep outside the regions")
    ap.add_argument("--roi-t", type=float, default=0.0, help="timestep inside the regions")
    ap.add_argument("--transition", type=float, default=-1.0,
                    help="ramp width in input pixels (-1: the model's receptive field)")
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ctsr_env.OUT_DIR, "roi.png"))
    ap.add_argument("--compare", help="also write uniform | regions | difference here")
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("ctsrupscale") is None:
        sys.exit("ctsrupscale not found: build it or set CTSR_BUILD_DIR / GST_PLUGIN_PATH")
    if args.input:
        rgb = load_frame(args.input, args.width)
        sign = None
    else:
        rgb = load_frame(DEFAULT_PHOTO, args.width)
        sign = draw_sign(rgb)
    rects = [tuple(int(v) for v in r.split(",")) for r in args.rect]
    if any(len(r) != 4 for r in rects):
        sys.exit("--rect takes x,y,w,h")
    cascade = None
    if args.faces:
        cascade = cv2.CascadeClassifier(CASCADE)
        if cascade.empty():
            sys.exit("cannot load %s (Debian package opencv-data)" % CASCADE)

    def regions_of(i, frame):  # per frame: faces are detected again on each
        r = list(rects)
        if cascade is not None:
            r += find_faces(frame, cascade)
        if sign and not rects and cascade is None:
            r.append(sign)
        return r

    frames = [rgb] * args.frames
    outs, out_regions = upscale(frames, regions_of, args, True)
    print("regions (input px): %s -> on the output: %s" % (regions_of(0, rgb), out_regions))
    cv2.imwrite(args.out, cv2.cvtColor(outs[-1], cv2.COLOR_RGB2BGR))
    print("wrote %s" % args.out)
    if args.compare:
        uniform, _ = upscale(frames[-1:], regions_of, args, False)
        compare_picture(uniform[-1], outs[-1], out_regions, args, args.compare)
        print("wrote %s" % args.compare)


if __name__ == "__main__":
    main()
