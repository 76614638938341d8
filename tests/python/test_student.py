"""Tests of the PyTorch student (training/ctsr), its safetensors I/O and the golden files."""
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctsr import golden, safetensors_io
from ctsr.export import export, load_student
from ctsr.student import CONFIGS, Student, macs_per_pixel, window_attention

torch.set_num_threads(2)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")

SMALL = dict(scale=2, channels=8, blocks=2, attn_blocks=[0, 1], window=4, heads=2, mlp_ratio=2,
             act="silu", temb_dim=16, temb_hidden=32, temb_scale=100.0)


def small_model(seed=0, scale=2, film=True):
    torch.manual_seed(seed)
    m = Student(dict(SMALL, scale=scale))
    if film:
        with torch.no_grad():
            for b in m.blocks:
                b.film.weight.normal_(0, 0.3)
                b.film.bias.normal_(0, 0.3)
    return m.eval()


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (33, 17)])
def test_output_shape(scale, hw):
    h, w = hw
    m = small_model(scale=scale)
    with torch.no_grad():
        y = m(torch.rand(2, 3, h, w), torch.tensor([0.1, 0.9]))
    assert y.shape == (2, 3, scale * h, scale * w)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def naive_window_attention(qkv, heads, win):
    n, c3, h, w = qkv.shape
    c = c3 // 3
    d = c // heads
    out = torch.zeros(n, c, h, w, dtype=qkv.dtype)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                y0, x0 = (y // win) * win, (x // win) * win
                y1, x1 = min(y0 + win, h), min(x0 + win, w)
                for hd in range(heads):
                    q = qkv[b, hd * d:(hd + 1) * d, y, x]
                    k = qkv[b, c + hd * d:c + (hd + 1) * d, y0:y1, x0:x1].reshape(d, -1)
                    v = qkv[b, 2 * c + hd * d:2 * c + (hd + 1) * d, y0:y1, x0:x1].reshape(d, -1)
                    a = torch.softmax((q @ k) / math.sqrt(d), dim=0)
                    out[b, hd * d:(hd + 1) * d, y, x] = v @ a
    return out


@pytest.mark.parametrize("heads", [1, 2])
def test_window_attention_edge_rule(heads):
    torch.manual_seed(1)
    qkv = torch.randn(1, 3 * 8, 11, 9, dtype=torch.float64) * 2.0
    got = window_attention(qkv, heads, 4)
    ref = naive_window_attention(qkv, heads, 4)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-10, rtol=0)


def test_macs_per_pixel():
    assert 90_000 <= macs_per_pixel(CONFIGS["default"]) <= 115_000
    assert 8_000 <= macs_per_pixel(CONFIGS["tiny"]) <= 12_000
    Student(CONFIGS["default"])  # both configs must validate
    Student(CONFIGS["tiny"])


def test_safetensors_roundtrip(tmp_path):
    torch.manual_seed(2)
    ts = {"b.weight": torch.randn(3, 4, 3, 3), "a": torch.randn(5) * 100,
          "c.bias": torch.randn(7)}
    meta = {"format": "x", "config": json.dumps({"k": [1, 2]}), "unicode": "é"}
    p32 = str(tmp_path / "f32.safetensors")
    safetensors_io.save(p32, ts, meta, dtype="F32")
    got, gmeta = safetensors_io.load(p32)
    assert gmeta == meta
    assert set(got) == set(ts)
    for k in ts:
        assert got[k].dtype == torch.float32 and got[k].shape == ts[k].shape
        assert torch.equal(got[k], ts[k])
    # layout: header length multiple of 8, tensors contiguous in sorted order
    raw = open(p32, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    off = 0
    for k in sorted(ts):
        b, e = hdr[k]["data_offsets"]
        assert b == off and hdr[k]["dtype"] == "F32"
        off = e
    assert 8 + n + off == len(raw)

    p16 = str(tmp_path / "f16.safetensors")
    safetensors_io.save(p16, ts, meta, dtype="F16")
    got, gmeta = safetensors_io.load(p16)
    assert gmeta == meta
    for k in ts:
        assert got[k].dtype == torch.float32
        assert torch.equal(got[k], ts[k].half().float())
        assert torch.allclose(got[k], ts[k], rtol=2 ** -10, atol=0)


def test_export_roundtrip(tmp_path):
    m = small_model(seed=3)
    p = str(tmp_path / "m.safetensors")
    prov = {"name": "test", "steps": 1}
    export(m, p, provenance=prov)
    _, meta = safetensors_io.load(p)
    assert meta == {"format": "ctsr-student", "format_version": "1",
                    "config": json.dumps(m.cfg, sort_keys=True),
                    "provenance": json.dumps(prov, sort_keys=True)}
    m2 = load_student(p)
    assert m2.cfg == m.cfg
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        for t in (0.0, 0.6):
            assert torch.equal(m(x, t), m2(x, t))


def test_state_dict_names():
    sd = Student(CONFIGS["default"]).state_dict()
    c = CONFIGS["default"]["channels"]
    assert sd["head.weight"].shape == (c, 3, 3, 3)
    assert sd["tail.weight"].shape == (12, c, 3, 3)
    assert sd["blocks.1.attn.qkv.weight"].shape == (3 * c, c, 1, 1)
    assert sd["blocks.0.film.weight"].shape == (2 * c, 64)
    assert sd["temb.fc1.weight"].shape == (64, 32)
    assert "blocks.0.attn.qkv.weight" not in sd


def test_timestep_matters():
    m = small_model(seed=4)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        d = (m(x, 0.0) - m(x, 1.0)).abs().max().item()
    assert d > 1e-3


@pytest.mark.parametrize("name", list(golden.SETS))
def test_golden(name):
    st = os.path.join(DATA, f"golden_{name}.safetensors")
    g = golden.read_bin(os.path.join(DATA, f"golden_{name}.bin"))
    m = load_student(st)
    assert m.cfg["scale"] == g["scale"]
    assert np.allclose(g["t"], golden.TIMESTEPS)
    x = torch.from_numpy(g["input"].copy()).permute(2, 0, 1)[None]
    assert g["output"].shape == (len(g["t"]), g["scale"] * g["h"], g["scale"] * g["w"], 3)
    with torch.no_grad():
        for i, t in enumerate(g["t"]):
            y = m(x, float(t))[0].permute(1, 2, 0).numpy()
            assert np.abs(y - g["output"][i]).max() <= 1e-5, f"{name} t={t}"
            clamped = np.mean((g["output"][i] == 0) | (g["output"][i] == 1))
            assert clamped < 0.2


def test_golden_f16():
    a, _ = safetensors_io.load(os.path.join(DATA, "golden_small.safetensors"))
    b, meta = safetensors_io.load(os.path.join(DATA, "golden_small_f16.safetensors"))
    assert meta["format"] == "ctsr-student"
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(b[k], a[k].half().float())
