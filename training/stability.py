"""Temporal stability of PyTorch students on panning clips (no element, no teachers: quick).

    cd training && /usr/bin/python3 stability.py --model ctsr-x2=../models/ctsr-x2.safetensors \\
        --model new=checkpoints/eq-default/ckpt.pt --scenes 4

For each of the first --scenes validation photos, the clip of ctsr_eval.py's temporal-stability
test (pan_clip: --frames frames of --lr px LR, HR windows moved by --step HR px per frame, LR
frames their antialiased bicubic halves) is upscaled by bicubic and by each model at each
--ts, and scored with ctsr_eval.flicker (mean motion-compensated frame-to-frame difference,
8-bit levels, --margin output px left out at the borders). Prints one row per method: the
flicker per scene and their mean. The element reproduces the PyTorch student to >= 92 dB
(docs/element-eval), so these are the element's figures up to rounding; ctsr_eval.py measures
the element itself and the teachers (x4plus 5.10 on scene 0).

A model is NAME=PATH with PATH a .safetensors export or a training checkpoint (ckpt.pt: its EMA
weights).
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import baseline  # noqa: E402
import ctsr_eval  # noqa: E402
import data  # noqa: E402
from evaluate import upscale_u8  # noqa: E402


def load_any(path):
    """A student from a safetensors export or from a train.py checkpoint's EMA weights."""
    if path.endswith(".pt"):
        from ctsr.student import Student
        ck = torch.load(path, map_location="cpu")
        m = Student(ck["cfg"])
        m.load_state_dict(ck["ema"])
        return m.eval()
    from ctsr.export import load_student
    return load_student(path).eval()


def clips(n_scenes, lr, frames, step, degradation="none", seed=0, shared_root=None,
          system_root=None):
    """The pan clips of the first n_scenes validation photos: [(id, LR frames, origins)]."""
    man = data.load_manifest()
    ents = data.entries(man, "val")[:n_scenes]
    out = []
    for e in ents:
        scene = data.load_hr(e, shared_root, system_root)
        lrs, _, origins = ctsr_eval.pan_clip(scene, lr, frames, step, degradation, seed)
        out.append((e["id"], lrs, origins))
    return out


def clip_flicker(up, clip, margin=16):
    """ctsr_eval.flicker of the clip (id, LR frames, origins) upscaled frame by frame by up
    (uint8 LR -> uint8 x2)."""
    _, lrs, origins = clip
    return ctsr_eval.flicker([up(x) for x in lrs], origins, margin)["mean"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], help="NAME=PATH (repeat)")
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--lr", type=int, default=64)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--step", default="1,3", help="DY,DX HR pixels per frame")
    ap.add_argument("--margin", type=int, default=16)
    ap.add_argument("--degradation", default="none", choices=("none", "realesrgan", "mild"))
    ap.add_argument("--ts", default="0,0.5,1")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    step = tuple(int(v) for v in a.step.split(","))
    ts = [float(v) for v in a.ts.split(",")]
    cl = clips(a.scenes, a.lr, a.frames, step, a.degradation)
    print("method | " + " | ".join(c[0][:18] for c in cl) + " | mean")

    def row(name, up):
        f = [clip_flicker(up, c, a.margin) for c in cl]
        print(f"{name} | " + " | ".join(f"{v:.2f}" for v in f) + f" | {np.mean(f):.2f}",
              flush=True)
        return float(np.mean(f))

    row("bicubic", baseline.bicubic_x2)
    for spec in a.model:
        name, path = spec.split("=", 1)
        m = load_any(path)
        for t in ts:
            row(f"{name} t={t:g}", lambda x, m=m, t=t: upscale_u8(m, x, t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
