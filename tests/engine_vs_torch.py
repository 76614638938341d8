"""The engine against PyTorch on real photographs (meson test `engine-vs-torch-photos`).

For every model given and every t, runs the built `ctsr-upscale` (libctsr on the default Vulkan
device: lavapipe without a GPU) on centre crops of real photographs, runs the PyTorch student
(training/ctsr, the source of truth) on the same 8-bit input, rounds both to 8 bits the same
way (floor(255 v + 0.5), as the engine's output shader) and requires the PSNR between them
(RGB, whole image) to be at least --min-psnr. Prints every measurement.

Fails (exit 1, never the skip code 77) when the binary fails, e.g. with no Vulkan device, or
when a photo is missing.

    /usr/bin/python3 tests/engine_vs_torch.py --upscale build/tools/ctsr-upscale \\
        --model models/ctsr-x2.safetensors --model models/ctsr-x2-tiny.safetensors \\
        --photos ../shared/data/photos/sun_hays80
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "training"))
from ctsr.export import load_student  # noqa: E402

# two photographs of sun_hays80 (file name prefixes): buildings and sky; dense foliage
PHOTOS = ["barn_sun_", "forest_broadleaf_sun_"]


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def centre_crop(path, w, h):
    im = Image.open(path).convert("RGB")
    if im.width < w or im.height < h:
        fail(f"{path}: {im.width}x{im.height} is smaller than the {w}x{h} crop")
    x0, y0 = (im.width - w) // 2, (im.height - h) // 2
    return np.array(im.crop((x0, y0, x0 + w, y0 + h)), dtype=np.uint8)


def to_code(v):
    """float in [0, 1] -> 8 bits, rounded as shaders/output.comp does."""
    return np.clip(np.floor(v * 255.0 + 0.5), 0, 255).astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def run_engine(binary, model, t, src, dst):
    cmd = [binary, "--model", model, "--timestep", repr(t), src, dst]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {p.returncode}:\n{p.stdout}{p.stderr}")
    out = np.asarray(Image.open(dst).convert("RGBA"), dtype=np.uint8)
    m = re.search(r" on (.*), model ", p.stderr)
    return out[..., :3], m.group(1) if m else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upscale", required=True, help="the built ctsr-upscale")
    ap.add_argument("--model", action="append", required=True, help="a model (repeatable)")
    ap.add_argument("--photos", required=True, help="folder of the sun_hays80 photographs")
    ap.add_argument("--crop", default="160x120", help="centre crop WxH (default 160x120)")
    ap.add_argument("--timesteps", default="0,0.5,1")
    ap.add_argument("--min-psnr", type=float, default=50.0)
    a = ap.parse_args()

    torch.set_num_threads(1)  # faster than 2 next to other jobs on a shared 2-core machine
    cw, ch = (int(v) for v in a.crop.split("x"))
    ts = [float(v) for v in a.timesteps.split(",")]
    if not os.path.isdir(a.photos):
        fail(f"no photographs at {a.photos}")
    names = sorted(os.listdir(a.photos))
    photos = []
    for prefix in PHOTOS:
        match = [n for n in names if n.startswith(prefix)]
        if not match:
            fail(f"no photograph {prefix}* in {a.photos}")
        photos.append(os.path.join(a.photos, match[0]))

    results, worst, device = [], math.inf, None
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="ctsr-photos-") as tmp:
        inputs = []
        for i, path in enumerate(photos):
            rgb = centre_crop(path, cw, ch)
            src = os.path.join(tmp, f"in{i}.png")
            Image.fromarray(rgb).save(src)
            inputs.append((os.path.basename(path), rgb, src))
        for model_path in a.model:
            model = load_student(model_path)
            mname = os.path.basename(model_path)
            for t in ts:
                for pname, rgb, src in inputs:
                    dst = os.path.join(tmp, "out.png")
                    eng, device = run_engine(a.upscale, model_path, t, src, dst)
                    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
                    with torch.no_grad():
                        y = model(x, t)[0].permute(1, 2, 0).numpy()
                    ref = to_code(y)
                    if eng.shape != ref.shape:
                        fail(f"{mname} t={t} {pname}: engine {eng.shape} vs PyTorch {ref.shape}")
                    p = psnr(eng, ref)
                    diff = np.abs(eng.astype(np.int16) - ref.astype(np.int16))
                    results.append((mname, t, pname, p, int(diff.max()), float(np.mean(diff > 0))))
                    worst = min(worst, p)
                    print(f"{mname:28s} t={t:<4} {pname:40s} PSNR {p:6.2f} dB  "
                          f"max diff {diff.max()}  differing values {100 * np.mean(diff > 0):.3f}%",
                          flush=True)
    print(f"Vulkan device: {device}")
    print(f"{len(results)} comparisons of {cw}x{ch} crops in {time.time() - start:.1f} s; "
          f"lowest PSNR {worst:.2f} dB (bound {a.min_psnr} dB)")
    bad = [r for r in results if not r[3] >= a.min_psnr]
    if bad:
        fail("; ".join(f"{m} t={t} {p}: {v:.2f} dB" for m, t, p, v, _, _ in bad))
    print("PASS")


if __name__ == "__main__":
    main()
