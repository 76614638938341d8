"""PyTorch side of ctsr-bench: the same student weights on the CPU.

Prints one JSON line: ms per frame of the whole network, ms of its convolutions alone, and
the MACs per pixel of each, for a WxH input at t = 0.5 (no_grad, channels_last, 2 threads).

Attention (--attention): "fast" (the default) runs the attention blocks on the training
path's fast implementation (training/ctsr/fastattn.py: fused C++ window attention and GELU,
the same function as student.py within float32 rounding), so PyTorch's whole-network time is
not dominated by the reference's window partition and masked softmax; "reference" runs
student.py as it is. The line says which ran ("attention": "fast-cpp", "fast-py" or
"reference").
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
from ctsr.export import load_student  # noqa: E402
from ctsr.student import macs_per_pixel  # noqa: E402


def timed(fn, iters):
    fn()  # warm-up
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attention", choices=("fast", "reference"), default="fast")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_student(a.model).eval().to(memory_format=torch.channels_last)
    attention = "reference"
    if a.attention == "fast":
        from ctsr import fastattn  # noqa: E402
        fastattn.use_fast_attention(model)
        attention = "fast-cpp" if fastattn.cpp_available() else "fast-py"
    img = torch.rand(1, 3, a.height, a.width).contiguous(memory_format=torch.channels_last)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    conv_macs = sum(m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                    for m in convs)
    with torch.no_grad():
        ms = timed(lambda: model(img, 0.5), a.iters)
        inputs = [torch.rand(1, m.in_channels, a.height, a.width).contiguous(
            memory_format=torch.channels_last) for m in convs]
        conv_ms = timed(lambda: [m(x) for m, x in zip(convs, inputs)], a.iters)
    print(json.dumps({"ms": ms, "conv_ms": conv_ms, "macs_per_px": macs_per_pixel(model.cfg),
                      "conv_macs_per_px": conv_macs, "threads": torch.get_num_threads(),
                      "attention": attention,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
