"""Is libctsr's cost linear in pixels? Time per input pixel from 160x90 to 1920x1080 on the
Vulkan device, one model, side by side in one run.

    /usr/bin/python3 bench/pixel_scaling.py [--build-dir build] [--model tiny] [--rounds 2]

Runs <build-dir>/bench/ctsr-bench --no-torch at each size (RGBA frames; enough frames per
size for about a second of work, its median frame), in --rounds passes over the sizes so that
a slow stretch of a shared machine does not fall on one size only; the figure per size is the
median over the rounds. Prints ms per frame, ns per input pixel and each size's time per
pixel relative to the median over sizes (target: all within 15%, i.e. the spread
max / min - 1 <= 0.15), and a JSON line. A second spread uses each size's fastest frame over
all rounds: other work on a shared machine only ever adds time, so the fastest frame is the
cost of the work itself, and the spread of the medians also measures the machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SIZES = [(160, 90), (320, 180), (640, 360), (1280, 720), (1920, 1080)]


def model_path(name):
    if os.path.exists(name):
        return os.path.abspath(name)
    f = "ctsr-x2.safetensors" if name == "default" else f"ctsr-x2-{name}.safetensors"
    return os.path.join(REPO, "models", f)


def bench(exe, model, w, h, frames):
    cmd = [exe, "--model", model, "--width", str(w), "--height", str(h), "--frames",
           str(frames), "--no-torch"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit(f"{' '.join(cmd)} failed (rc {p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.environ.get("CTSR_BUILD_DIR", "build"))
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ms-per-px-guess", type=float, default=2e-5,
                    help="only to choose the frame counts (about 1 s per size)")
    a = ap.parse_args()
    build = a.build_dir if os.path.isabs(a.build_dir) else os.path.join(REPO, a.build_dir)
    exe = os.path.join(build, "bench", "ctsr-bench")
    model = model_path(a.model)
    per = {s: [] for s in SIZES}
    fastest = {s: float("inf") for s in SIZES}
    tiles = {}
    for _ in range(a.rounds):
        for w, h in SIZES:
            frames = max(2, min(15, int(1000 / (a.ms_per_px_guess * w * h))))
            r = bench(exe, model, w, h, frames)
            per[(w, h)].append(r["vk_ms"])
            fastest[(w, h)] = min(fastest[(w, h)], r["vk_min_ms"])
            tiles[(w, h)] = r["tile"]
    ms = {s: statistics.median(v) for s, v in per.items()}
    ns_px = {s: 1e6 * ms[s] / (s[0] * s[1]) for s in SIZES}
    ref = statistics.median(ns_px.values())
    spread = max(ns_px.values()) / min(ns_px.values()) - 1
    ns_min = {s: 1e6 * fastest[s] / (s[0] * s[1]) for s in SIZES}
    spread_min = max(ns_min.values()) / min(ns_min.values()) - 1
    print(f"\nmodel {a.model}, ctsr-bench --no-torch, median of {a.rounds} round(s)\n")
    print(f"{'size':>10s} {'tile':>5s} {'ms/frame':>9s} {'ns/pixel':>9s} {'vs median':>9s} "
          f"{'fastest ms':>10s} {'ns/pixel':>9s}")
    for w, h in SIZES:
        s = (w, h)
        print(f"{w:>5d}x{h:<4d} {tiles[s]:5d} {ms[s]:9.1f} {ns_px[s]:9.1f} {ns_px[s] / ref:9.3f} "
              f"{fastest[s]:10.1f} {ns_min[s]:9.1f}")
    print(f"\nspread of the time per pixel (max / min - 1): {spread:.3f} of the medians, "
          f"{spread_min:.3f} of the fastest frames (target <= 0.15)")
    print(json.dumps({"model": a.model, "rounds": a.rounds, "spread": spread,
                      "spread_fastest": spread_min,
                      "sizes": [{"width": w, "height": h, "tile": tiles[(w, h)],
                                 "ms": ms[(w, h)], "ns_per_px": ns_px[(w, h)],
                                 "fastest_ms": fastest[(w, h)], "ns_per_px_fastest": ns_min[(w, h)],
                                 "runs_ms": per[(w, h)]} for w, h in SIZES]}))


if __name__ == "__main__":
    main()
