"""Tests of the Real-ESRGAN-style second-order degradation pipeline (training/degrade.py)."""
import math

import numpy as np
import pytest
import torch

import degrade as D


# one intra-op thread for this module (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def hr_image(h=64, w=96, seed=0):
    """A smooth test card with some texture (float32 HxWx3 in [0, 1])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.3 * np.cos(5 * y),
                     0.3 + 0.5 * x * y], axis=-1)
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def many_params():
    return [D.sample_params(np.random.default_rng(s)) for s in range(1000)]


def test_deterministic_and_seed_dependent():
    hr = hr_image()
    a = D.degrade(hr, 7)
    b = D.degrade(hr, 7)
    c = D.degrade(hr, 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # torch input, batch: image i uses seed + i
    t = torch.from_numpy(hr).permute(2, 0, 1)
    tb = D.degrade(torch.stack([t, t]), 7)
    assert torch.equal(tb[0], torch.from_numpy(a).permute(2, 0, 1))
    assert torch.equal(tb[1], torch.from_numpy(c).permute(2, 0, 1))


@pytest.mark.parametrize("seed", range(6))
def test_output_shape_and_range(seed):
    hr = hr_image(48, 64, seed)
    lq = D.degrade(hr, seed)
    assert lq.shape == (24, 32, 3)
    assert lq.min() >= 0.0 and lq.max() <= 1.0
    assert np.allclose(lq * 255, np.round(lq * 255), atol=1e-4)  # 8-bit levels
    t = D.degrade(torch.from_numpy(hr).permute(2, 0, 1), seed)
    assert t.shape == (3, 24, 32) and t.dtype == torch.float32
    u8 = D.degrade((hr * 255).round().astype(np.uint8), seed)
    assert u8.shape == (24, 32, 3)


def test_size_must_divide():
    with pytest.raises(ValueError):
        D.degrade(hr_image(33, 32), 0)


def test_small_image_smaller_than_kernel():
    lq = D.degrade(hr_image(8, 8), 3)
    assert lq.shape == (4, 4, 3)


def test_parameter_ranges(many_params):
    o = D.DEFAULTS
    for P in many_params:
        for key, sig, bg, bp in (("blur1", o["blur_sigma"], o["betag_range"], o["betap_range"]),
                                 ("blur2", o["blur_sigma2"], o["betag_range2"], o["betap_range2"])):
            b = P[key]
            if b is None:
                continue
            assert b["size"] in D.KERNEL_SIZES and b["size"] % 2 == 1
            assert b["kernel"].shape == (21, 21)
            if b["kind"] == "sinc":
                lo = math.pi / 3 if b["size"] < 13 else math.pi / 5
                assert lo <= b["omega_c"] <= math.pi
                continue
            assert b["kind"] in D.KERNEL_TYPES
            assert sig[0] <= b["sigma_x"] <= sig[1] and sig[0] <= b["sigma_y"] <= sig[1]
            assert -math.pi <= b["theta"] <= math.pi
            if "aniso" not in b["kind"]:
                assert b["sigma_x"] == b["sigma_y"] and b["theta"] == 0
            if b["kind"].startswith("generalized"):
                assert bg[0] <= b["beta"] <= bg[1]
            elif b["kind"].startswith("plateau"):
                assert bp[0] <= b["beta"] <= bp[1]
        for key, rr in (("resize1", o["resize_range"]), ("resize2", o["resize_range2"])):
            r = P[key]
            assert r["mode"] in D.RESIZE_MODES
            if r["kind"] == "up":
                assert 1.0 <= r["scale"] <= rr[1]
            elif r["kind"] == "down":
                assert rr[0] <= r["scale"] <= 1.0
            else:
                assert r["scale"] == 1.0
        for key, nr, pr in (("noise1", o["noise_range"], o["poisson_scale_range"]),
                            ("noise2", o["noise_range2"], o["poisson_scale_range2"])):
            n = P[key]
            if n["kind"] == "gaussian":
                assert nr[0] <= n["sigma"] <= nr[1]
            else:
                assert n["kind"] == "poisson" and pr[0] <= n["scale"] <= pr[1]
        assert 30 <= P["jpeg1"] <= 95 and 30 <= P["jpeg2"] <= 95
        if P["final_sinc"] is not None:
            assert math.pi / 3 <= P["final_sinc"]["omega_c"] <= math.pi
            assert P["final_sinc"]["size"] in D.KERNEL_SIZES
        assert P["final_mode"] in D.RESIZE_MODES


def test_parameter_frequencies(many_params):
    """The probabilities of the options file, within sampling error (n = 1000)."""
    n = len(many_params)
    frac = lambda f: sum(1 for P in many_params if f(P)) / n
    tol = 4 * math.sqrt(0.25 / n)
    assert abs(frac(lambda P: P["blur1"]["kind"] == "sinc") - 0.1) < tol
    assert abs(frac(lambda P: P["blur2"] is not None) - 0.8) < tol
    assert abs(frac(lambda P: P["final_sinc"] is not None) - 0.8) < tol
    assert abs(frac(lambda P: P["blur1"]["kind"] == "iso") - 0.9 * 0.45) < tol
    assert abs(frac(lambda P: P["resize1"]["kind"] == "down") - 0.7) < tol
    assert abs(frac(lambda P: P["resize2"]["kind"] == "up") - 0.3) < tol
    assert abs(frac(lambda P: P["noise1"]["kind"] == "gaussian") - 0.5) < tol
    assert abs(frac(lambda P: P["noise2"]["gray"]) - 0.4) < tol
    assert abs(frac(lambda P: P["sinc_last"]) - 0.5) < tol
    # generalized / plateau betas: half of the draws below 1
    bg = [P["blur1"]["beta"] for P in many_params if "beta" in P["blur1"]
          and P["blur1"]["kind"].startswith("generalized")]
    assert 0.3 < np.mean(np.array(bg) < 1) < 0.7


def test_kernels_normalised_and_shaped():
    rng = np.random.default_rng(0)
    for k in (7, 13, 21):
        for w in (D.gaussian_kernel(k, 1.5, 1.5, 0.0), D.gaussian_kernel(k, 2.5, 0.5, 0.7),
                  D.generalized_gaussian_kernel(k, 2.0, 1.0, -1.0, 0.6),
                  D.plateau_kernel(k, 1.2, 2.0, 2.0, 1.5), D.sinc_kernel(k, math.pi / 4)):
            assert w.shape == (k, k)
            assert abs(w.sum() - 1.0) < 1e-9
            assert np.allclose(w, w[::-1, ::-1])  # point symmetric
    iso = D.gaussian_kernel(21, 2.0, 2.0, 0.0)
    assert np.allclose(iso, iso.T) and iso.min() > 0 and iso.argmax() == 21 * 10 + 10
    for _ in range(50):
        b = D.sample_blur(rng, D.KERNEL_TYPES, D.DEFAULTS["kernel_prob"], 0.3, (0.2, 3), (0.5, 4),
                          (1, 2))
        assert abs(b["kernel"].sum() - 1.0) < 1e-9
    # J1 against tabulated values
    assert np.allclose(D.bessel_j1([1.0, 5.0, 10.0]), [0.4400505857, -0.3275791376, 0.0434727462],
                       atol=1e-9)


def test_filter_delta_and_reflect():
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    delta = np.zeros((21, 21))
    delta[10, 10] = 1
    assert torch.allclose(D.filter2d(x, delta), x)
    shift = np.zeros((3, 3))
    shift[1, 2] = 1  # correlation: out(y, x) = in(y, x + 1), reflected at the edge
    y = D.filter2d(x, shift)
    assert torch.allclose(y[..., :-1], x[..., 1:]) and torch.allclose(y[..., -1], x[..., -2])
    assert list(D._reflect_index(3, 5)) == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]


def test_noise_gray_and_colour():
    x = torch.full((1, 3, 32, 32), 0.5)
    rng = np.random.default_rng(0)
    g = D.add_noise(x, dict(kind="gaussian", sigma=10.0, gray=True), rng)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    assert abs(float((g - x).std()) - 10 / 255) < 0.005
    c = D.add_noise(x, dict(kind="gaussian", sigma=10.0, gray=False), rng)
    assert not torch.equal(c[:, 0], c[:, 1])
    p = D.add_noise(x, dict(kind="poisson", scale=1.0, gray=True), rng)
    assert torch.equal(p[:, 0], p[:, 2]) and float((p - x).abs().max()) > 0


def test_jpeg_quality_matters():
    x = torch.from_numpy(hr_image(64, 64)).permute(2, 0, 1)[None]
    e95 = float((D.jpeg(x, 95) - x).abs().mean())
    e30 = float((D.jpeg(x, 30) - x).abs().mean())
    assert e95 < e30
    # colour order preserved (red stays red)
    red = torch.zeros(1, 3, 16, 16)
    red[:, 0] = 1.0
    r = D.jpeg(red, 90)
    assert float(r[:, 0].mean()) > 0.9 and float(r[:, 2].mean()) < 0.1
