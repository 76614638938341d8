#!/usr/bin/env python3
"""Writes the seed corpus of the model-loader fuzzer (tests/fuzz/corpus/): small valid
ctsr-student models (F32, F16, with and without attention) and broken variants of them, one
per kind of defect the loader refuses. Pure Python (no torch): the models are tiny so that
the fuzzer runs fast. Usage: python3 tests/fuzz/make_corpus.py [outdir]"""
import json
import math
import os
import random
import struct
import sys

TINY = {"act": "lrelu", "attn_blocks": [], "blocks": 1, "channels": 4, "heads": 1,
        "mlp_ratio": 1, "scale": 2, "temb_dim": 2, "temb_hidden": 2, "temb_scale": 100.0,
        "window": 4}
ATTN = dict(TINY, attn_blocks=[0], act="silu", mlp_ratio=2)
X4 = dict(TINY, scale=4, act="relu")
X3 = dict(TINY, scale=3, window=3, blocks=2, attn_blocks=[1])


def tensors(cfg):
    """name -> shape, as training/ctsr/student.py names them."""
    C, M, E, s = cfg["channels"], cfg["temb_hidden"], cfg["temb_dim"], cfg["scale"]
    hC = cfg["mlp_ratio"] * C
    t = {}

    def layer(p, cout, cin, k):
        t[p + ".weight"] = [cout, cin, k, k] if k else [cout, cin]
        t[p + ".bias"] = [cout]
    layer("temb.fc1", M, E, 0)
    layer("temb.fc2", M, M, 0)
    layer("head", C, 3, 3)
    layer("tail", 3 * s * s, C, 3)
    for b in range(cfg["blocks"]):
        layer(f"blocks.{b}.conv1", C, C, 3)
        layer(f"blocks.{b}.conv2", C, C, 3)
        layer(f"blocks.{b}.film", 2 * C, M, 0)
        if b in cfg["attn_blocks"]:
            for n in ("norm1", "norm2"):
                t[f"blocks.{b}.attn.{n}.weight"] = [C]
                t[f"blocks.{b}.attn.{n}.bias"] = [C]
            layer(f"blocks.{b}.attn.qkv", 3 * C, C, 1)
            layer(f"blocks.{b}.attn.proj", C, C, 1)
            layer(f"blocks.{b}.attn.mlp1", hC, C, 1)
            layer(f"blocks.{b}.attn.mlp2", C, hC, 1)
    return t


def model(cfg, dtype="F32", seed=0, edit=None, meta=None, version="1", extra=b""):
    """Bytes of a model; edit(header_text) -> header_text changes the JSON text."""
    rnd = random.Random(seed)
    fmt = "<e" if dtype == "F16" else "<f"
    header, blobs, off = {}, [], 0
    for name in sorted(tensors(cfg)):
        shape = tensors(cfg)[name]
        n = math.prod(shape)
        b = b"".join(struct.pack(fmt, rnd.uniform(-0.5, 0.5)) for _ in range(n))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta if meta is not None else {
        "format": "ctsr-student", "format_version": version, "config": json.dumps(cfg),
        "provenance": json.dumps({"name": "fuzz-seed", "seed": seed})}
    text = json.dumps(header, separators=(",", ":"))
    if edit:
        text = edit(text)
    hb = text.encode()
    hb += b" " * ((-len(hb)) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(blobs) + extra


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    ok = model(TINY)
    hl = struct.unpack("<Q", ok[:8])[0]
    nan_f32 = bytearray(ok)
    nan_f32[8 + hl:8 + hl + 4] = struct.pack("<f", float("nan"))
    seeds = {
        "valid-tiny-f32": ok,
        "valid-tiny-f16": model(TINY, "F16", 1),
        "valid-attn-f32": model(ATTN, seed=2),
        "valid-attn-f16": model(ATTN, "F16", 3),
        "valid-x4-f16": model(X4, "F16", 4),
        "valid-x3-f16": model(X3, "F16", 5),
        "empty": b"",
        "short-length": ok[:5],
        "truncated-header": ok[:8 + hl // 2],
        "truncated-data": ok[:-7],
        "trailing-data": ok + b"\0" * 16,
        "wrong-magic": b"\x89PNG\r\n\x1a\n" + ok[8:200],
        "huge-header-length": struct.pack("<Q", 1 << 62) + ok[8:],
        "not-json": struct.pack("<Q", 16) + b"{not json at all",
        "nan-weight": bytes(nan_f32),
        "wrong-version": model(TINY, version="2"),
        "wrong-format": model(TINY, meta={"format": "gguf", "format_version": "1", "config": "{}"}),
        "wrong-shape": model(TINY, edit=lambda t: t.replace('"shape":[4,3,3,3]', '"shape":[4,3,9,1]', 1)),
        "missing-tensor": model(TINY, edit=lambda t: t.replace('"head.bias"', '"head.bias.x"', 1)),
        "duplicate-tensor": model(TINY, edit=lambda t: t.replace(
            '"head.bias":', '"head.bias":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"head.bias":', 1)),
        "duplicate-metadata": model(TINY, edit=lambda t: t.replace(
            '"__metadata__":', '"__metadata__":{},"__metadata__":', 1)),
        "overlap": model(TINY, edit=lambda t: t.replace('"data_offsets":[0,', '"data_offsets":[16,', 1)),
        "int-beyond-64-bits": model(TINY, edit=lambda t: t.replace('"shape":[4]', '"shape":[99999999999999999999]', 1)),
        "deep-nesting": struct.pack("<Q", 200) + b"[" * 200,
        "bad-config": model(dict(TINY, channels=6)),
        "config-not-json": model(TINY, meta={"format": "ctsr-student", "format_version": "1", "config": "{\"scale\":"}),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
