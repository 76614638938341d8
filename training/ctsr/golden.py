"""Write golden vectors for the engine tests (tests/data).

    cd training && python3 -m ctsr.golden --out ../tests/data

For each set NAME: golden_NAME.safetensors (fp32 student with random weights) and
golden_NAME.bin, little-endian:

    char magic[8] = "CTSRGLD1"; u32 h, w, scale, n_t; f32 t[n_t];
    f32 input[h][w][3]; f32 output[n_t][scale*h][scale*w][3]

Also golden_small_f16.safetensors: the "small" weights stored as F16.
"""
import argparse
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

from .export import export
from .student import CONFIGS, Student

MAGIC = b"CTSRGLD1"
TIMESTEPS = (0.0, 0.37, 1.0)

SETS = {
    "small": (dict(scale=2, channels=8, blocks=2, attn_blocks=[0, 1], window=4, heads=2,
                   mlp_ratio=2, act="silu", temb_dim=16, temb_hidden=32, temb_scale=100.0),
              10, 13, 1),
    "default": (CONFIGS["default"], 17, 21, 2),
    "x4": (dict(scale=4, channels=8, blocks=1, attn_blocks=[], window=8, heads=1, mlp_ratio=2,
                act="relu", temb_dim=16, temb_hidden=16, temb_scale=100.0),
           6, 9, 3),
    "tiny": (CONFIGS["tiny"], 12, 19, 4),
}

MAX_CLAMPED = 0.2


def make_input(h, w, seed):
    """A smooth random image plus noise, in [0, 1], as a [1, 3, h, w] tensor."""
    rng = np.random.RandomState(seed)
    coarse = torch.from_numpy(rng.rand(1, 3, 4, 4).astype(np.float32))
    smooth = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    noise = torch.from_numpy(rng.randn(1, 3, h, w).astype(np.float32)) * 0.08
    return (0.15 + 0.7 * smooth + noise).clamp(0.0, 1.0)


def make_model(cfg, seed):
    """Default-initialised random weights (fixed seed), non-zero FiLM (normal std 0.3),
    LayerNorm affine perturbed around (1, 0) so the engine's use of it is tested."""
    torch.manual_seed(seed)
    model = Student(cfg)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for blk in model.blocks:
            blk.film.weight.copy_(torch.randn(blk.film.weight.shape, generator=g) * 0.3)
            blk.film.bias.copy_(torch.randn(blk.film.bias.shape, generator=g) * 0.3)
            if blk.attn is not None:
                for ln in (blk.attn.norm1, blk.attn.norm2):
                    ln.weight.copy_(1.0 + 0.2 * torch.randn(ln.weight.shape, generator=g))
                    ln.bias.copy_(0.1 * torch.randn(ln.bias.shape, generator=g))
    model.eval()
    return model


def clamped_fraction(y):
    return ((y == 0.0) | (y == 1.0)).float().mean().item()


def run(model, img):
    with torch.no_grad():
        return [model(img, t) for t in TIMESTEPS]


def write_bin(path, img, outs, scale):
    _, _, h, w = img.shape
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<4I", h, w, scale, len(outs)))
        f.write(np.asarray(TIMESTEPS, dtype="<f4").tobytes())
        f.write(img[0].permute(1, 2, 0).contiguous().numpy().astype("<f4").tobytes())
        for y in outs:
            f.write(y[0].permute(1, 2, 0).contiguous().numpy().astype("<f4").tobytes())


def read_bin(path):
    """-> dict(h, w, scale, t [n_t], input [h,w,3], output [n_t, sh, sw, 3]) as numpy."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: bad magic")
    h, w, s, n = struct.unpack("<4I", data[8:24])
    o = 24
    t = np.frombuffer(data, "<f4", n, o); o += 4 * n
    inp = np.frombuffer(data, "<f4", h * w * 3, o).reshape(h, w, 3); o += 4 * h * w * 3
    cnt = n * s * h * s * w * 3
    out = np.frombuffer(data, "<f4", cnt, o).reshape(n, s * h, s * w, 3); o += 4 * cnt
    if o != len(data):
        raise ValueError(f"{path}: {len(data) - o} trailing bytes")
    return dict(h=h, w=w, scale=s, t=t, input=inp, output=out)


def make_set(name, out_dir):
    cfg, h, w, seed = SETS[name]
    model = make_model(cfg, seed)
    img = make_input(h, w, seed)
    # scale the head/body down until the outputs are mostly unclamped
    for _ in range(20):
        outs = run(model, img)
        frac = max(clamped_fraction(y) for y in outs)
        if frac < MAX_CLAMPED:
            break
        with torch.no_grad():
            model.tail.weight.mul_(0.5)
            model.tail.bias.mul_(0.5)
    else:
        raise RuntimeError(f"{name}: outputs stay clamped")
    dt = max((outs[i] - outs[0]).abs().max().item() for i in range(1, len(outs)))
    if dt < 1e-3:
        raise RuntimeError(f"{name}: timestep has no visible effect ({dt})")
    st = os.path.join(out_dir, f"golden_{name}.safetensors")
    prov = {"name": f"golden-{name}", "seed": seed,
            "note": "random weights for engine tests (training/ctsr/golden.py)"}
    export(model, st, "F32", prov)
    write_bin(os.path.join(out_dir, f"golden_{name}.bin"), img, outs, cfg["scale"])
    if name == "small":
        export(model, os.path.join(out_dir, "golden_small_f16.safetensors"), "F16", prov)
    print(f"{name}: {h}x{w} x{cfg['scale']}, clamped {frac:.3f}, max t effect {dt:.3f}")


def main(argv=None):
    torch.set_num_threads(2)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory (tests/data)")
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    for name in a.sets:
        make_set(name, a.out)


if __name__ == "__main__":
    main()
