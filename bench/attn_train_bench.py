"""Training step time of the default student: reference vs fast window attention vs none.

One Adam step (zero_grad, forward, L1 loss, backward, update) on a batch of random crops
(default 16 of 64x64, target 2x), for
  (a)    Student(default) as in student.py (reference attention),
  (b)    the same with fastattn.use_fast_attention, C++ kernels (if they build here),
  (b-py) the same with the PyTorch implementation of the fast path (BACKEND "py"),
  (c)    Student(default, attn_blocks=[]) (no attention blocks),
timed round-robin (one step of each per round, so that load changes on a shared machine hit
all alike) after warm-up rounds. Prints median wall-clock and CPU (process) time per step,
the ratios to (c), and the minor page faults of each variant's last step. --keep-memory
calls fastattn.keep_freed_memory() first (glibc keeps freed memory: no fresh-page faults).

  /usr/bin/python3 bench/attn_train_bench.py --threads 2 [--keep-memory]
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
from ctsr import fastattn  # noqa: E402
from ctsr.student import CONFIGS, Student  # noqa: E402

NAMES = {"ref": "(a) reference attention", "fast": "(b) fast attention, C++",
         "fast-py": "(b-py) fast attention, PyTorch", "noattn": "(c) no attention blocks"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--keep-memory", action="store_true")
    a = ap.parse_args()
    if a.keep_memory and not fastattn.keep_freed_memory():
        print("keep_freed_memory() failed")
    torch.set_num_threads(a.threads)
    cfg = CONFIGS["default"]
    variants = ["ref", "fast", "fast-py", "noattn"]
    if not fastattn.cpp_available():
        variants.remove("fast")
    models, opts = {}, {}
    for k in variants:
        torch.manual_seed(0)
        m = Student(dict(cfg, attn_blocks=[]) if k == "noattn" else cfg)
        models[k] = fastattn.use_fast_attention(m) if k.startswith("fast") else m
        opts[k] = torch.optim.Adam(m.parameters(), lr=1e-4)
    img = torch.rand(a.batch, 3, a.crop, a.crop)
    tgt = torch.rand(a.batch, 3, a.crop * cfg["scale"], a.crop * cfg["scale"])
    t = torch.rand(a.batch)
    faults = {}

    def step(k):
        fastattn.BACKEND = "py" if k == "fast-py" else "auto"
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0, c0 = time.perf_counter(), time.process_time()
        opts[k].zero_grad(set_to_none=True)
        F.l1_loss(models[k](img, t), tgt).backward()
        opts[k].step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        faults[k] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        return dt, dc

    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for r in range(a.warmup + a.steps):
        for k in variants:
            dt, dc = step(k)
            if r >= a.warmup:
                wall[k].append(dt)
                cpu[k].append(dc)
    print(f"threads={torch.get_num_threads()} batch={a.batch} crop={a.crop} steps={a.steps} "
          f"warmup={a.warmup} keep_memory={a.keep_memory} torch={torch.__version__}")
    print("  page faults in the last step: " + ", ".join(f"{k} {faults[k]}" for k in variants))
    for label, times in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in variants:
            print(f"  {label:4s} {NAMES[k]:32s} {med[k] * 1e3:8.1f} ms/step   "
                  f"{med[k] / med['noattn']:5.2f} x (c)   "
                  f"[min {min(times[k]) * 1e3:.1f}, max {max(times[k]) * 1e3:.1f}]")
        print(f"  {label:4s} ratios: " + "   ".join(
            f"{k}/c = {med[k] / med['noattn']:.2f}" for k in variants if k != "noattn"))


if __name__ == "__main__":
    main()
