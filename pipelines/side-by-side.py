"""One image that shows what the timestep does: the input upscaled by bicubic, the element's
outputs at t = 0, 0.5 and 1, and (t = 1) - (t = 0) amplified around mid-grey, side by side on
the same crop (the most detailed square of the t = 1 output), each magnified with nearest
neighbours so the pixels stay pixels.

    python3 pipelines/side-by-side.py INPUT.png OUT_T0.png OUT_T05.png OUT_T1.png SIDE.png \
        [--crop 192] [--zoom 2] [--gain 8]

Needs numpy and PIL only (python3-numpy, python3-pil).
"""
import argparse
import sys

import numpy as np
from PIL import Image, ImageDraw


def load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def detail_origin(img, c):
    """Top-left of the c x c square with the most gradient energy (searched on a c/4 grid)."""
    y = img.astype(np.float64).mean(axis=2)
    g = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1, :]
    ii = np.pad(g, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = g.shape
    best, at, s = -1.0, (0, 0), max(1, c // 4)
    for yy in range(0, max(1, h - c + 1), s):
        for xx in range(0, max(1, w - c + 1), s):
            y1, x1 = min(h, yy + c), min(w, xx + c)
            e = ii[y1, x1] - ii[yy, x1] - ii[y1, xx] + ii[yy, xx]
            if e > best:
                best, at = e, (yy, xx)
    return at


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("t0")
    ap.add_argument("t05")
    ap.add_argument("t1")
    ap.add_argument("out")
    ap.add_argument("--crop", type=int, default=192, help="output pixels per panel edge")
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--gain", type=float, default=8.0, help="gain of the difference panel")
    a = ap.parse_args(argv)
    src = Image.open(a.input).convert("RGB")
    outs = [load(p) for p in (a.t0, a.t05, a.t1)]
    h, w = outs[0].shape[:2]
    if any(o.shape != outs[0].shape for o in outs) or (h, w) != (2 * src.height, 2 * src.width):
        sys.exit(f"side-by-side: the outputs must all be twice the input's size "
                 f"({2 * src.width}x{2 * src.height})")
    bic = np.asarray(src.resize((w, h), Image.BICUBIC))
    diff = np.clip(128 + np.round((outs[2].astype(np.float64) - outs[0]) * a.gain), 0, 255)
    panels = [("input, bicubic x2", bic), ("t = 0 (fidelity)", outs[0]), ("t = 0.5", outs[1]),
              ("t = 1 (realness)", outs[2]),
              (f"(t=1) - (t=0), x{a.gain:g} (grey = 0)", diff.astype(np.uint8))]
    c = min(a.crop, h, w)
    oy, ox = detail_origin(outs[2], c)
    tiles = [p[oy:oy + c, ox:ox + c].repeat(a.zoom, 0).repeat(a.zoom, 1) for _, p in panels]
    t = c * a.zoom
    gap, head = 6, 22
    canvas = Image.new("RGB", (len(tiles) * t + (len(tiles) - 1) * gap, head + t), "white")
    draw = ImageDraw.Draw(canvas)
    for i, ((label, _), tile) in enumerate(zip(panels, tiles)):
        x = i * (t + gap)
        canvas.paste(Image.fromarray(tile), (x, head))
        draw.text((x + 4, 5), label, fill="black")
    canvas.save(a.out)
    mad = np.abs(outs[2].astype(np.int16) - outs[0]).mean()
    print(f"wrote {a.out} (crop {c}x{c} at x={ox}, y={oy} of the {w}x{h} output, x{a.zoom}; "
          f"t = 1 vs t = 0: {mad:.2f} levels on average over the whole image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
