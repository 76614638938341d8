"""Image quality metrics for SR evaluation: PSNR, SSIM (full reference), NIQE, BRISQUE (no
reference).

Images: numpy H x W x 3 RGB (uint8, or float in [0, 1]) or torch [3, H, W] / [1, 3, H, W]
float in [0, 1]. Grey (H x W) arrays are taken as luma already (same scaling).

PSNR / SSIM follow the usual SR convention (BasicSR's calculate_psnr / calculate_ssim with
test_y_channel=True): the Y channel of BT.601 YCbCr in studio range,
    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255      (R, G, B in 0..255; Y in [16, 235])
not rounded, a border of `crop_border` pixels (= the scale) removed, peak 255. SSIM: Gaussian
window 11 x 11, sigma 1.5, valid region only, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2.

NIQE (Mittal, Soundararajan, Bovik 2013) after the MATLAB reference (computequality.m) and
BasicSR's niqe.py, with the pristine model niqe_pris_params.npz (mu_pris_param, cov_pris_param,
gaussian_window): Y channel as above rounded to integers; the image is cut to a multiple of
96 x 96; at two scales (full, then MATLAB-style antialiased bicubic x0.5): MSCN coefficients
(x - mu) / (sigma + 1) with the 7 x 7 Gaussian window (edge replication), per patch (96 x 96,
then 48 x 48) 18 features: an AGGD fit of the MSCN values (alpha, mean of the two betas) and,
for the four neighbour products (horizontal, vertical, two diagonals), AGGD fits (alpha, mean,
beta_l, beta_r). The 36-D patch features are fitted with a multivariate Gaussian and compared to
the pristine one:  D = sqrt((mu_p - mu_d)^T pinv((S_p + S_d) / 2) (mu_p - mu_d)).
As in the reference, the sharpness-based patch selection (patches whose mean local deviation
exceeds 0.75 x the image's maximum) applies when fitting a pristine model (fit_niqe_model, the
counterpart of estimatemodelparam.m); scoring (niqe) uses every patch, as computequality.m does,
so scores are comparable with published NIQE numbers.

BRISQUE: OpenCV's quality module (cv2.quality.QualityBRISQUE_compute) with the LIVE model and
range files (brisque_model_live.yml, brisque_range_live.yml). Lower is better for NIQE and
BRISQUE.
"""
import math
import os

import cv2
import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_IQA_DIR = os.path.join(REPO, "..", "shared", "data", "iqa")


# ----------------------------------------------------------------------------- inputs

def to_rgb255(img):
    """-> float64 H x W x 3 (or H x W) in 0..255 units."""
    try:
        import torch
        if torch.is_tensor(img):
            t = img.detach().cpu().double()
            if t.dim() == 4:
                if t.shape[0] != 1:
                    raise ValueError("one image at a time")
                t = t[0]
            if t.dim() == 3:
                t = t.permute(1, 2, 0)
            return t.numpy() * 255.0
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float64)
    return a.astype(np.float64) * 255.0


def rgb_to_y(img):
    """BT.601 luma, studio range: float64 H x W with Y in [16, 235] (0..255 units)."""
    a = to_rgb255(img)
    if a.ndim == 2:
        return a
    return 16.0 + (a[..., 0] * 65.481 + a[..., 1] * 128.553 + a[..., 2] * 24.966) / 255.0


def _prep(img, crop_border, y_channel):
    a = rgb_to_y(img) if y_channel else to_rgb255(img)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
    return a


# ----------------------------------------------------------------------------- PSNR / SSIM

def psnr(img, ref, crop_border=2, y_channel=True):
    """PSNR in dB (inf for identical images)."""
    a, b = _prep(img, crop_border, y_channel), _prep(ref, crop_border, y_channel)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def _ssim_plane(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    w = k @ k.T
    f = lambda x: cv2.filter2D(x, -1, w)[5:-5, 5:-5]
    mu1, mu2 = f(a), f(b)
    s11 = f(a * a) - mu1 ** 2
    s22 = f(b * b) - mu2 ** 2
    s12 = f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def ssim(img, ref, crop_border=2, y_channel=True):
    """Mean SSIM (1.0 for identical images); RGB (y_channel=False) averages the channels."""
    a, b = _prep(img, crop_border, y_channel), _prep(ref, crop_border, y_channel)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., i], b[..., i]) for i in range(a.shape[-1])]))


# ----------------------------------------------------------------------------- MATLAB imresize

def _cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_matrix(n_in, n_out, scale):
    """MATLAB imresize weights (bicubic, antialiased when shrinking, symmetric borders)."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    d = u[:, None] - idx
    w = scale * _cubic(d * scale) if scale < 1 else _cubic(d)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    src = aux[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), p), src.ravel()), w.ravel())
    return m


def imresize(img, scale):
    """MATLAB's imresize(img, scale) (bicubic, antialiasing) of a 2-D float array."""
    h, w = img.shape
    oh, ow = int(math.ceil(h * scale)), int(math.ceil(w * scale))
    return _resize_matrix(h, oh, scale) @ img @ _resize_matrix(w, ow, scale).T


# ----------------------------------------------------------------------------- NIQE

_GAM = np.arange(0.2, 10.001, 0.001)
_lg = np.vectorize(math.lgamma)
_R_GAM = np.exp(2 * _lg(2 / _GAM) - _lg(1 / _GAM) - _lg(3 / _GAM))


def aggd_fit(x):
    """Asymmetric generalized Gaussian fit (moment matching, as the reference) ->
    (alpha, beta_l, beta_r). NaN semantics as the reference: an empty side gives a NaN beta
    and an undetermined shape gives alpha = 0.2 (the first table entry)."""
    x = np.asarray(x, np.float64).ravel()
    neg, pos = x[x < 0], x[x > 0]
    left_std = math.sqrt(np.mean(neg ** 2)) if neg.size else math.nan
    right_std = math.sqrt(np.mean(pos ** 2)) if pos.size else math.nan
    gammahat = left_std / right_std
    m2 = np.mean(x ** 2)
    rhat = np.mean(np.abs(x)) ** 2 / m2 if m2 > 0 else math.nan
    rhatnorm = (rhat * (gammahat ** 3 + 1) * (gammahat + 1)) / ((gammahat ** 2 + 1) ** 2)
    alpha = _GAM[0] if math.isnan(rhatnorm) else _GAM[np.argmin((_R_GAM - rhatnorm) ** 2)]
    f = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return float(alpha), left_std * f, right_std * f


def niqe_features(block):
    """The 18 NIQE features of one MSCN patch."""
    alpha, bl, br = aggd_fit(block)
    feat = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * (math.gamma(2 / alpha) / math.gamma(1 / alpha))
        feat += [alpha, mean, bl, br]
    return feat


def _mscn(img, window):
    f = lambda x: cv2.filter2D(x, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
    mu = f(img)
    sigma = np.sqrt(np.abs(f(img * img) - mu * mu))
    return (img - mu) / (sigma + 1), sigma


def niqe_patch_features(y, window, patch=96):
    """Per-patch 36-D features (two scales) and per-patch sharpness of a Y image (0..255)."""
    h, w = y.shape
    nh, nw = h // patch, w // patch
    if nh == 0 or nw == 0:
        raise ValueError(f"image {h}x{w} is smaller than one {patch}x{patch} patch")
    img = y[:nh * patch, :nw * patch].astype(np.float64)
    feats, sharp = [], None
    for scale in (1, 2):
        mscn, sigma = _mscn(img, window)
        ps = patch // scale
        fs, ss = [], []
        for j in range(nw):
            for i in range(nh):
                fs.append(niqe_features(mscn[i * ps:(i + 1) * ps, j * ps:(j + 1) * ps]))
                ss.append(sigma[i * ps:(i + 1) * ps, j * ps:(j + 1) * ps].mean())
        feats.append(np.array(fs))
        if scale == 1:
            sharp = np.array(ss)
            img = imresize(img / 255.0, 0.5) * 255.0
    return np.concatenate(feats, axis=1), sharp


def load_niqe_params(path=None):
    p = np.load(path or os.path.join(DEFAULT_IQA_DIR, "niqe_pris_params.npz"))
    return dict(mu=np.asarray(p["mu_pris_param"], np.float64).reshape(-1),
                cov=np.asarray(p["cov_pris_param"], np.float64),
                window=np.asarray(p["gaussian_window"], np.float64))


_params_cache = {}


def niqe(img, params=None, crop_border=0, patch=96):
    """NIQE score (lower is better). params: a dict from load_niqe_params or a path to
    niqe_pris_params.npz (default: the shared data folder)."""
    if params is None or isinstance(params, (str, os.PathLike)):
        key = str(params)
        if key not in _params_cache:
            _params_cache[key] = load_niqe_params(params)
        params = _params_cache[key]
    y = np.round(rgb_to_y(img))
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    feat, _ = niqe_patch_features(y, params["window"], patch)
    mu_d = np.nanmean(feat, axis=0)
    ok = feat[~np.isnan(feat).any(axis=1)]
    cov_d = np.cov(ok, rowvar=False) if len(ok) > 1 else np.zeros_like(params["cov"])
    inv = np.linalg.pinv((params["cov"] + cov_d) / 2)
    d = params["mu"] - mu_d
    return float(np.sqrt(d @ inv @ d))


def fit_niqe_model(images, window, patch=96, sharpness_threshold=0.75):
    """Pristine MVG model (mu, cov) from natural images, after estimatemodelparam.m: per image,
    keep the patches whose sharpness (mean local deviation at full scale) exceeds
    sharpness_threshold x the image's largest patch sharpness."""
    all_feats = []
    for img in images:
        feat, sharp = niqe_patch_features(np.round(rgb_to_y(img)), window, patch)
        keep = sharp > sharpness_threshold * sharp.max()
        all_feats.append(feat[keep])
    f = np.concatenate(all_feats)
    f = f[~np.isnan(f).any(axis=1)]
    return f.mean(axis=0), np.cov(f, rowvar=False)


# ----------------------------------------------------------------------------- BRISQUE

def brisque(img, model_path=None, range_path=None):
    """BRISQUE score through OpenCV's quality module (lower is better; typically 0..100)."""
    model_path = model_path or os.path.join(DEFAULT_IQA_DIR, "brisque_model_live.yml")
    range_path = range_path or os.path.join(DEFAULT_IQA_DIR, "brisque_range_live.yml")
    for p in (model_path, range_path):
        if not os.path.exists(p):
            raise FileNotFoundError(p)
    a = np.clip(np.round(to_rgb255(img)), 0, 255).astype(np.uint8)
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    return float(cv2.quality.QualityBRISQUE_compute(a, model_path, range_path)[0])
