"""Real-ESRGAN's second-order degradation pipeline, seeded and deterministic, for scale 2.

    from degrade import degrade
    lq = degrade(hr, seed=123)            # hr [3, H, W] (or [N, 3, H, W], or HxWx3 numpy) in [0, 1]
                                          # -> lq [3, H/2, W/2], 8-bit levels in [0, 1]

The steps follow Real-ESRGAN (realesrgan/models/realesrgan_model.py, feed_data, and
realesrgan/data/realesrgan_dataset.py, with basicsr/data/degradations.py) and the ranges of its
options file options/train_realesrgan_x4plus.yml (DEFAULTS below):

  stage 1: blur (kernel 1) -> random resize (up/down/keep; area, bilinear, bicubic)
           -> Gaussian or Poisson noise (colour or grey) -> JPEG
  stage 2: blur (kernel 2, with probability second_blur_prob) -> random resize relative to
           HR/scale -> noise -> then, in random order, either
           [resize to HR/scale + final sinc filter, JPEG] or [JPEG, resize + final sinc filter]
  finally: clamp and round to 8-bit levels.

Blur kernels (size k drawn from 7, 9, ..., 21 and zero-padded to 21 x 21): isotropic / anisotropic
Gaussian, generalized Gaussian (exponent beta), plateau (1 / (1 + d^beta)), or, with probability
sinc_prob, a circular low-pass (sinc) kernel with cutoff omega_c in [pi/3, pi] (k < 13) or
[pi/5, pi]. The final sinc filter (probability final_sinc_prob) has omega_c in [pi/3, pi].

Adaptation to scale 2: the second resize and the final resize target HR/2 (Real-ESRGAN: HR/4);
all ranges are Real-ESRGAN's. Differences, all deliberate: parameters are drawn per image (Real-
ESRGAN draws resize/noise/JPEG choices per batch), randomness comes from one numpy Generator
seeded by `seed` (same seed -> identical output), JPEG uses OpenCV's encoder (Real-ESRGAN's
training uses a differentiable JPEG of the same quality scale), and the HR is not sharpened
(Real-ESRGAN degrades an unsharp-masked copy of the GT; pass usm=True for that).

Filtering pads by reflection (as BasicSR's filter2D), also when the image is smaller than the
kernel (repeated reflection). Resizes use torch.nn.functional.interpolate as Real-ESRGAN does.
"""
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

KERNEL_MAX = 21
KERNEL_SIZES = tuple(range(7, KERNEL_MAX + 1, 2))
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")

DEFAULTS = dict(
    scale=2,
    # stage 1
    kernel_list=KERNEL_TYPES, kernel_prob=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    sinc_prob=0.1, blur_sigma=(0.2, 3.0), betag_range=(0.5, 4.0), betap_range=(1.0, 2.0),
    resize_prob=(0.2, 0.7, 0.1), resize_range=(0.15, 1.5),
    gaussian_noise_prob=0.5, noise_range=(1.0, 30.0), poisson_scale_range=(0.05, 3.0),
    gray_noise_prob=0.4, jpeg_range=(30, 95),
    # stage 2
    second_blur_prob=0.8,
    kernel_list2=KERNEL_TYPES, kernel_prob2=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    sinc_prob2=0.1, blur_sigma2=(0.2, 1.5), betag_range2=(0.5, 4.0), betap_range2=(1.0, 2.0),
    resize_prob2=(0.3, 0.4, 0.3), resize_range2=(0.3, 1.2),
    gaussian_noise_prob2=0.5, noise_range2=(1.0, 25.0), poisson_scale_range2=(0.05, 2.5),
    gray_noise_prob2=0.4, jpeg_range2=(30, 95),
    # final
    final_sinc_prob=0.8,
)

# A mild degradation, as in streamed or broadcast video: light blur, little noise, moderate JPEG,
# no resize in either stage. Passed as `opt` (degrade(hr, seed, opt=MILD)); only these keys
# differ from DEFAULTS.
MILD = dict(
    kernel_list=("iso", "aniso"), kernel_prob=(0.7, 0.3), sinc_prob=0.0, blur_sigma=(0.2, 1.2),
    resize_prob=(0.0, 0.0, 1.0), resize_range=(1.0, 1.0),
    gaussian_noise_prob=0.5, noise_range=(1.0, 5.0), poisson_scale_range=(0.05, 0.5),
    gray_noise_prob=0.4, jpeg_range=(70, 95),
    second_blur_prob=0.0, resize_prob2=(0.0, 0.0, 1.0), resize_range2=(1.0, 1.0),
    noise_range2=(1.0, 3.0), poisson_scale_range2=(0.05, 0.3), jpeg_range2=(60, 95),
    final_sinc_prob=0.1,
)
PRESETS = {"realesrgan": None, "mild": MILD}


# ----------------------------------------------------------------------------- kernels

def bessel_j1(x):
    """Bessel function of the first kind, order 1 (Bessel's integral by the midpoint rule, which
    is exact to float64 rounding for |x| < 100 with 256 nodes)."""
    x = np.asarray(x, np.float64)
    u, inv = np.unique(x, return_inverse=True)
    n = 256
    tau = (np.arange(n) + 0.5) * (np.pi / n)
    j = np.mean(np.cos(tau - u[:, None] * np.sin(tau)), axis=-1)
    return j[inv].reshape(x.shape)


def mesh_grid(k):
    ax = np.arange(-k // 2 + 1.0, k // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack((xx, yy), axis=-1)


def sigma_matrix(sig_x, sig_y, theta):
    d = np.diag([sig_x ** 2, sig_y ** 2])
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return u @ d @ u.T


def _quad(k, sig_x, sig_y, theta):
    inv = np.linalg.inv(sigma_matrix(sig_x, sig_y, theta))
    g = mesh_grid(k)
    return np.sum((g @ inv) * g, axis=-1)


def gaussian_kernel(k, sig_x, sig_y, theta):
    q = _quad(k, sig_x, sig_y, theta)
    w = np.exp(-0.5 * q)
    return w / w.sum()


def generalized_gaussian_kernel(k, sig_x, sig_y, theta, beta):
    w = np.exp(-0.5 * np.power(_quad(k, sig_x, sig_y, theta), beta))
    return w / w.sum()


def plateau_kernel(k, sig_x, sig_y, theta, beta):
    w = 1.0 / (np.power(_quad(k, sig_x, sig_y, theta), beta) + 1.0)
    return w / w.sum()


def sinc_kernel(k, omega_c):
    """Circular low-pass filter (2-D sinc, jinc) of size k with cutoff omega_c, normalised."""
    c = (k - 1) / 2.0
    yy, xx = np.mgrid[0:k, 0:k]
    r = np.sqrt((xx - c) ** 2 + (yy - c) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = omega_c * bessel_j1(omega_c * r) / (2 * np.pi * r)
    w[k // 2, k // 2] = omega_c ** 2 / (4 * np.pi)
    return w / w.sum()


def pad_kernel(w, size=KERNEL_MAX):
    p = (size - w.shape[0]) // 2
    return np.pad(w, ((p, p), (p, p))) if p > 0 else w


def _beta(rng, lo, hi):
    # BasicSR: half of the draws below 1, half above
    return rng.uniform(lo, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, hi)


def sample_blur(rng, kernel_list, kernel_prob, sinc_prob, sigma, betag, betap):
    """One blur kernel as Real-ESRGAN draws it -> dict(kind, size, ..., kernel 21x21)."""
    k = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < sinc_prob:
        omega = rng.uniform(np.pi / 3, np.pi) if k < 13 else rng.uniform(np.pi / 5, np.pi)
        return dict(kind="sinc", size=k, omega_c=omega, kernel=pad_kernel(sinc_kernel(k, omega)))
    p = np.asarray(kernel_prob, np.float64)
    kind = kernel_list[int(rng.choice(len(kernel_list), p=p / p.sum()))]
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sx = rng.uniform(*sigma)
    if iso:
        sy, theta = sx, 0.0
    else:
        sy, theta = rng.uniform(*sigma), rng.uniform(-np.pi, np.pi)
    d = dict(kind=kind, size=k, sigma_x=sx, sigma_y=sy, theta=theta)
    if kind.startswith("generalized"):
        d["beta"] = _beta(rng, *betag)
        w = generalized_gaussian_kernel(k, sx, sy, theta, d["beta"])
    elif kind.startswith("plateau"):
        d["beta"] = _beta(rng, *betap)
        w = plateau_kernel(k, sx, sy, theta, d["beta"])
    else:
        w = gaussian_kernel(k, sx, sy, theta)
    d["kernel"] = pad_kernel(w)
    return d


def _sample_resize(rng, prob, rng_range):
    p = np.asarray(prob, np.float64)
    kind = ("up", "down", "keep")[int(rng.choice(3, p=p / p.sum()))]
    if kind == "up":
        s = rng.uniform(1.0, rng_range[1])
    elif kind == "down":
        s = rng.uniform(rng_range[0], 1.0)
    else:
        s = 1.0
    return dict(kind=kind, scale=s, mode=RESIZE_MODES[int(rng.integers(3))])


def _sample_noise(rng, gauss_prob, sigma_range, poisson_range, gray_prob):
    if rng.uniform() < gauss_prob:
        d = dict(kind="gaussian", sigma=rng.uniform(*sigma_range))
    else:
        d = dict(kind="poisson", scale=rng.uniform(*poisson_range))
    d["gray"] = bool(rng.uniform() < gray_prob)
    return d


def sample_params(rng, opt=None):
    """Draw every parameter of one degradation (not the noise fields) from `rng`."""
    o = dict(DEFAULTS, **(opt or {}))
    P = {}
    P["blur1"] = sample_blur(rng, o["kernel_list"], o["kernel_prob"], o["sinc_prob"],
                             o["blur_sigma"], o["betag_range"], o["betap_range"])
    P["resize1"] = _sample_resize(rng, o["resize_prob"], o["resize_range"])
    P["noise1"] = _sample_noise(rng, o["gaussian_noise_prob"], o["noise_range"],
                                o["poisson_scale_range"], o["gray_noise_prob"])
    P["jpeg1"] = int(round(rng.uniform(*o["jpeg_range"])))
    blur2 = sample_blur(rng, o["kernel_list2"], o["kernel_prob2"], o["sinc_prob2"],
                        o["blur_sigma2"], o["betag_range2"], o["betap_range2"])
    P["blur2"] = blur2 if rng.uniform() < o["second_blur_prob"] else None
    P["resize2"] = _sample_resize(rng, o["resize_prob2"], o["resize_range2"])
    P["noise2"] = _sample_noise(rng, o["gaussian_noise_prob2"], o["noise_range2"],
                                o["poisson_scale_range2"], o["gray_noise_prob2"])
    P["jpeg2"] = int(round(rng.uniform(*o["jpeg_range2"])))
    P["sinc_last"] = bool(rng.uniform() < 0.5)  # True: JPEG first, then resize + sinc
    P["final_mode"] = RESIZE_MODES[int(rng.integers(3))]
    if rng.uniform() < o["final_sinc_prob"]:
        k = int(rng.choice(KERNEL_SIZES))
        omega = rng.uniform(np.pi / 3, np.pi)
        P["final_sinc"] = dict(size=k, omega_c=omega, kernel=pad_kernel(sinc_kernel(k, omega)))
    else:
        P["final_sinc"] = None
    P["scale"] = int(o["scale"])
    return P


# ----------------------------------------------------------------------------- operations

def _reflect_index(n, p):
    """Indices of a reflect (no edge repeat) padding by p of an axis of length n, any p."""
    i = np.arange(-p, n + p)
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.mod(i, period)
    return np.where(i >= n, period - i, i)


def filter2d(x, kernel):
    """x [N, C, H, W]; kernel k x k (odd) -> correlation with reflect padding (BasicSR filter2D)."""
    k = kernel.shape[-1]
    p = k // 2
    ih = torch.from_numpy(_reflect_index(x.shape[-2], p))
    iw = torch.from_numpy(_reflect_index(x.shape[-1], p))
    xp = x[..., ih, :][..., iw]
    n, c = x.shape[:2]
    w = torch.as_tensor(kernel, dtype=x.dtype).expand(c, 1, k, k)
    return F.conv2d(xp, w, groups=c)


def _resize(x, size, mode):
    size = (max(1, int(size[0])), max(1, int(size[1])))
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **kw)


def _gray(x):
    # BT.601 as torchvision's rgb_to_grayscale (used by BasicSR's *_pt noise)
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def add_noise(x, d, rng):
    """Gaussian (sigma in 8-bit units) or Poisson noise, colour or grey; clipped to [0, 1]."""
    n, c, h, w = x.shape
    if d["kind"] == "gaussian":
        shape = (n, 1, h, w) if d["gray"] else (n, c, h, w)
        noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * (d["sigma"] / 255.0)
    else:
        src = _gray(x) if d["gray"] else x
        src = torch.clamp(torch.round(src * 255.0), 0, 255) / 255.0
        noise = torch.empty_like(src)
        for i in range(n):
            vals = len(torch.unique(src[i]))
            vals = 2 ** math.ceil(math.log2(vals))
            lam = (src[i] * vals).double().numpy()
            out = torch.from_numpy(rng.poisson(lam).astype(np.float32)) / vals
            noise[i] = out - src[i]
        noise = noise * d["scale"]
    if noise.shape[1] != c:
        noise = noise.expand(n, c, h, w)
    return torch.clamp(x + noise, 0.0, 1.0)


def jpeg(x, quality):
    """JPEG round trip through OpenCV (4:2:0, libjpeg quality scale) of an RGB batch."""
    out = []
    for img in x:
        a = np.clip(np.round(img.permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(a[..., ::-1]),
                               [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        dec = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


def usm_sharp(x, weight=0.5, threshold=10, radius=50):
    """BasicSR's USMSharp (unsharp masking with a soft mask), for usm=True."""
    if radius % 2 == 0:
        radius += 1
    k = cv2.getGaussianKernel(radius, 0)
    kernel = (k @ k.T).astype(np.float32)
    blur = filter2d(x, kernel)
    res = x - blur
    mask = (torch.abs(res) * 255 > threshold).float()
    soft = filter2d(mask, kernel)
    sharp = torch.clamp(x + weight * res, 0, 1)
    return soft * sharp + (1 - soft) * x


def apply(hr, P, rng):
    """Degrade hr [N, 3, H, W] float32 in [0, 1] with parameters P; rng draws the noise."""
    s = P["scale"]
    H, W = hr.shape[-2:]
    out = filter2d(hr, P["blur1"]["kernel"])
    r = P["resize1"]
    out = _resize(out, (int(H * r["scale"]), int(W * r["scale"])), r["mode"])
    out = add_noise(out, P["noise1"], rng)
    out = jpeg(torch.clamp(out, 0, 1), P["jpeg1"])
    if P["blur2"] is not None:
        out = filter2d(out, P["blur2"]["kernel"])
    r = P["resize2"]
    out = _resize(out, (int(H / s * r["scale"]), int(W / s * r["scale"])), r["mode"])
    out = add_noise(out, P["noise2"], rng)

    def resize_sinc(o):
        o = _resize(o, (H // s, W // s), P["final_mode"])
        if P["final_sinc"] is not None:
            o = filter2d(o, P["final_sinc"]["kernel"])
        return o

    if not P["sinc_last"]:
        out = resize_sinc(out)
        out = jpeg(torch.clamp(out, 0, 1), P["jpeg2"])
    else:
        out = jpeg(torch.clamp(out, 0, 1), P["jpeg2"])
        out = resize_sinc(out)
    return torch.clamp(torch.round(out * 255.0), 0, 255) / 255.0


def degrade(hr, seed, opt=None, usm=False, return_params=False):
    """Degrade one HR image (or a batch, one parameter draw per image from seeds seed, seed+1, ...)

    hr: torch [3, H, W] / [N, 3, H, W] or numpy H x W x 3, RGB in [0, 1] (float) or uint8;
    H, W divisible by the scale. Returns the LQ image in the input's form (float in [0, 1],
    8-bit levels), H/scale x W/scale; with return_params, also the parameter dict(s)."""
    as_numpy = isinstance(hr, np.ndarray)
    if as_numpy:
        a = hr.astype(np.float32) / 255.0 if hr.dtype == np.uint8 else hr.astype(np.float32)
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
    else:
        x = hr.float()
        if x.dim() == 3:
            x = x[None]
    x = x.detach().cpu()
    s = int(dict(DEFAULTS, **(opt or {}))["scale"])
    if x.shape[-2] % s or x.shape[-1] % s:
        raise ValueError(f"HR size {tuple(x.shape[-2:])} not divisible by the scale {s}")
    outs, params = [], []
    for i in range(x.shape[0]):
        rng = np.random.default_rng(seed + i)
        P = sample_params(rng, opt)
        xi = x[i:i + 1]
        if usm:
            xi = usm_sharp(xi)
        outs.append(apply(xi, P, rng))
        params.append(P)
    lq = torch.cat(outs)
    if as_numpy:
        lq = lq[0].permute(1, 2, 0).numpy()
    elif hr.dim() == 3:
        lq = lq[0]
    if return_params:
        return lq, (params if len(params) > 1 else params[0])
    return lq
