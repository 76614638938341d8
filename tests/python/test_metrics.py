"""Tests of training/metrics.py: PSNR / SSIM (Y channel, border crop), NIQE, BRISQUE."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

import metrics as M

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data")
PHOTOS = os.path.join(SHARED, "photos", "sun_hays80")
NIQE_NPZ = os.path.join(SHARED, "iqa", "niqe_pris_params.npz")
BRISQUE_MODEL = os.path.join(SHARED, "iqa", "brisque_model_live.yml")
BRISQUE_RANGE = os.path.join(SHARED, "iqa", "brisque_range_live.yml")
# one intra-op thread for this module (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


NAMES = ("abbey_sun_asztnlqhlrvirneh.jpg", "barn_sun_btulbiaoilnxcseh.jpg",
         "badlands_sun_bvwwfrhtvupdxldb.jpg")


def photo(name=NAMES[0], size=None):
    img = cv2.imread(os.path.join(PHOTOS, name), cv2.IMREAD_COLOR)
    assert img is not None, name
    img = np.ascontiguousarray(img[..., ::-1])
    if size:
        h, w = img.shape[:2]
        y0, x0 = (h - size) // 2, (w - size) // 2
        img = img[y0:y0 + size, x0:x0 + size]
    return img


def blurred(img, sigma=2.0):
    return cv2.GaussianBlur(img, (0, 0), sigma)


def noisy(img, sigma=15.0, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def flat_card(h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(20, 200, (h, w, 3)).astype(np.uint8)


# ----------------------------------------------------------------------------- PSNR / SSIM

def test_y_channel():
    assert M.rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert M.rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    a = flat_card()
    t = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    assert np.allclose(M.rgb_to_y(a), M.rgb_to_y(t), atol=1e-4)


def test_identical():
    a = flat_card()
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.ssim(a, a, y_channel=False) == pytest.approx(1.0)


def test_psnr_constant_offset():
    a = flat_card()
    for d in (1, 4, 10):
        b = a + np.uint8(d)
        # Y offset = d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255
        assert M.psnr(b, a) == pytest.approx(20 * math.log10(255 / (d * 219 / 255)), abs=1e-9)
        assert M.psnr(b, a, y_channel=False) == pytest.approx(20 * math.log10(255 / d), abs=1e-9)
    # float [0, 1] input gives the same as uint8
    assert M.psnr(a / 255.0, (a + np.uint8(4)) / 255.0) == pytest.approx(M.psnr(a, a + np.uint8(4)))


def test_border_crop():
    a = flat_card()
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 255
    assert M.psnr(b, a, crop_border=2) == math.inf
    assert M.psnr(b, a, crop_border=1) < 30
    assert M.ssim(b, a, crop_border=2) == pytest.approx(1.0)


def test_ssim_decreases_with_noise():
    img = photo(size=128)
    vals = [M.ssim(noisy(img, s), img) for s in (2, 5, 10, 20, 40)]
    assert all(x > y for x, y in zip(vals, vals[1:]))
    assert vals[0] > 0.9 and vals[-1] < 0.6
    ps = [M.psnr(noisy(img, s), img) for s in (2, 5, 10, 20, 40)]
    assert all(x > y for x, y in zip(ps, ps[1:]))


# ----------------------------------------------------------------------------- NIQE

def test_imresize_matlab_half():
    ramp = np.tile(np.arange(32, dtype=np.float64), (16, 1))
    out = M.imresize(ramp, 0.5)
    assert out.shape == (8, 16)
    # the antialiased cubic kernel reproduces linear functions away from the borders
    assert np.allclose(out[:, 3:-3], (2 * np.arange(16) + 0.5)[3:-3][None], atol=1e-9)
    assert np.allclose(M.imresize(np.full((10, 12), 7.0), 0.5), 7.0)


def test_aggd_fit_known_distributions():
    rng = np.random.default_rng(0)
    a, bl, br = M.aggd_fit(rng.standard_normal(200000) * 0.5)
    assert a == pytest.approx(2.0, abs=0.05)
    assert bl == pytest.approx(0.5 * math.sqrt(2), rel=0.02)
    assert br == pytest.approx(0.5 * math.sqrt(2), rel=0.02)
    a, _, _ = M.aggd_fit(rng.laplace(size=200000))
    assert a == pytest.approx(1.0, abs=0.05)


def test_niqe_natural_photos_range_and_deterministic():
    params = M.load_niqe_params(NIQE_NPZ)
    assert params["mu"].shape == (36,) and params["cov"].shape == (36, 36)
    assert params["window"].shape == (7, 7)
    # clean natural photos: NIQE of a few units (these sharp Sun-Hays photos score about 1.7-4.7
    # at full size, 2-8 on 384 x 384 crops); pure noise scores far above
    scores = [M.niqe(photo(n), NIQE_NPZ) for n in NAMES]
    for s in scores:
        assert 1.5 < s < 6.0, scores
    rng = np.random.default_rng(0)
    assert M.niqe(rng.integers(0, 256, (192, 192, 3)).astype(np.uint8), NIQE_NPZ) > 15
    crop = photo(NAMES[0], size=192)
    assert M.niqe(crop, NIQE_NPZ) == M.niqe(crop.copy(), NIQE_NPZ)


def test_niqe_worse_for_blur_and_noise():
    for n in NAMES[:2]:
        img = photo(n, size=384)
        s = M.niqe(img, NIQE_NPZ)
        assert M.niqe(blurred(img), NIQE_NPZ) > s + 1.0
        assert M.niqe(noisy(img), NIQE_NPZ) > s + 1.0


def test_niqe_input_forms_and_small_image():
    img = photo(size=192)
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    assert M.niqe(t, NIQE_NPZ) == pytest.approx(M.niqe(img, NIQE_NPZ), abs=1e-9)
    with pytest.raises(ValueError):
        M.niqe(img[:90, :90], NIQE_NPZ)


def test_fit_niqe_model_shapes():
    params = M.load_niqe_params(NIQE_NPZ)
    mu, cov = M.fit_niqe_model([photo(n, size=288) for n in NAMES], params["window"])
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert np.allclose(cov, cov.T)


# ----------------------------------------------------------------------------- BRISQUE

def test_brisque_worse_for_blur_and_noise():
    assert hasattr(cv2, "quality"), "OpenCV without the quality module (python3-opencv)"
    for n in NAMES[:2]:
        img = photo(n, size=384)
        s = M.brisque(img, BRISQUE_MODEL, BRISQUE_RANGE)
        assert 0 <= s < 45
        assert M.brisque(blurred(img), BRISQUE_MODEL, BRISQUE_RANGE) > s + 10
        assert M.brisque(noisy(img), BRISQUE_MODEL, BRISQUE_RANGE) > s + 10
    with pytest.raises(FileNotFoundError):
        M.brisque(photo(size=96), "missing.yml", BRISQUE_RANGE)
