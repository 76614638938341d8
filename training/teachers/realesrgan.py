"""Real-ESRGAN teachers as PyTorch modules, loaded from the original ncnn files.

realesrgan-x4plus  RRDBNet (ESRGAN generator): conv_first 3->64; 23 RRDB blocks, each three
                   residual dense blocks (5 convs, growth 32, lrelu 0.2, out = x + 0.2 * conv5)
                   and out = x + 0.2 * rdb3(rdb2(rdb1(x))); conv_body; feat + body; two
                   (nearest x2, conv, lrelu 0.2); conv_hr + lrelu; conv_last 64->3. 16.7 M params.
realesrgan-x4fast  SRVGGNetCompact (realesr-general-x4v3): conv 3->64 + PReLU, 32 x (conv 64->64
                   + PReLU), conv 64->48, pixel_shuffle(4), plus nearest x4 upsample of the input.
                   1.21 M params.

Module and parameter names follow BasicSR's (body.N.rdb1.conv1, conv_first, ...), so a
state_dict is interchangeable with BasicSR's RRDBNet / SRVGGNetCompact.

Images RGB in [0, 1]. `forward(img, pre_pad=10)` reproduces the reference runner
(realesrgan-ncnn-vulkan / upscayl-bin): it mirror-pads (reflect, no edge repeat) the input by
10 px on every side and crops the output back, so the borders match the runner's untiled
output. Outputs are not clamped (clamp before converting to 8 bits).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import ncnn

NAMES = ("realesrgan-x4plus", "realesrgan-x4fast")
PRE_PAD = 10


def _reflect_pad(x, p):
    if p <= 0:
        return x
    if min(x.shape[-2:]) <= p:
        raise ValueError(f"image smaller than the {p}-px pre-padding")
    return F.pad(x, (p,) * 4, mode="reflect")


class ResidualDenseBlock(nn.Module):
    def __init__(self, nf=64, gc=32):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        lr = lambda t: F.leaky_relu(t, 0.2)
        x1 = lr(self.conv1(x))
        x2 = lr(self.conv2(torch.cat((x, x1), 1)))
        x3 = lr(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = lr(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf=64, gc=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    scale = 4

    def __init__(self, nf=64, nb=23, gc=32):
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, img, pre_pad=PRE_PAD):
        x = _reflect_pad(img, pre_pad)
        lr = lambda t: F.leaky_relu(t, 0.2)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = lr(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = lr(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(lr(self.conv_hr(feat)))
        return _crop(out, pre_pad * 4)

    def conv_modules(self):
        """Convolutions in the order of the ncnn file, with their activation (None or slope)."""
        m = [(self.conv_first, None)]
        for blk in self.body:
            for rdb in (blk.rdb1, blk.rdb2, blk.rdb3):
                m += [(rdb.conv1, 0.2), (rdb.conv2, 0.2), (rdb.conv3, 0.2), (rdb.conv4, 0.2),
                      (rdb.conv5, None)]
        m += [(self.conv_body, None), (self.conv_up1, 0.2), (self.conv_up2, 0.2),
              (self.conv_hr, 0.2), (self.conv_last, None)]
        return m


class SRVGGNetCompact(nn.Module):
    scale = 4

    def __init__(self, nf=64, nconv=32, upscale=4):
        super().__init__()
        self.upscale = upscale
        body = [nn.Conv2d(3, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(nconv):
            body += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        body += [nn.Conv2d(nf, 3 * upscale * upscale, 3, 1, 1)]
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, img, pre_pad=PRE_PAD):
        x = _reflect_pad(img, pre_pad)
        out = x
        for m in self.body:
            out = m(out)
        out = self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return _crop(out, pre_pad * self.upscale)

    def conv_modules(self):
        convs = [m for m in self.body if isinstance(m, nn.Conv2d)]
        return [(c, "prelu") for c in convs[:-1]] + [(convs[-1], None)]


def _crop(x, c):
    return x[..., c:x.shape[-2] - c, c:x.shape[-1] - c] if c > 0 else x


def _act_of(L):
    a = L.p(9, 0)
    if a == 0:
        return None
    if a == 2:
        return round(L.p(10)[0], 6)
    raise ValueError(f"{L.name}: unexpected activation {a}")


def _fill(model, layers, path):
    cv = ncnn.convs(layers)
    mods = model.conv_modules()
    if len(cv) != len(mods):
        raise ValueError(f"{path}: {len(cv)} convolutions, the architecture has {len(mods)}")
    prelus = [L for L in layers if L.type == "PReLU"]
    with torch.no_grad():
        for L, (mod, act) in zip(cv, mods):
            shape = (L.p(0), mod.in_channels, L.p(1), L.p(3, 1), L.p(4, 0))
            if shape != (mod.out_channels, mod.in_channels, 3, 1, 1) or \
                    L.p(6) != mod.weight.numel():
                raise ValueError(f"{path}: {L.name} {L.params} does not fit {mod}")
            if act != "prelu" and _act_of(L) != act:
                raise ValueError(f"{path}: {L.name} activation differs from the architecture")
            w, b = ncnn.conv_tensors(L, mod.in_channels)
            mod.weight.copy_(w)
            mod.bias.copy_(b)
        if isinstance(model, SRVGGNetCompact):
            pm = [m for m in model.body if isinstance(m, nn.PReLU)]
            if len(prelus) != len(pm):
                raise ValueError(f"{path}: {len(prelus)} PReLU layers, expected {len(pm)}")
            for L, m in zip(prelus, pm):
                m.weight.copy_(torch.from_numpy(L.weights["slope"].copy()))
        else:
            elt = [L for L in layers if L.type == "Eltwise"]
            if len(elt) != 3 * 23 + 23 or any(L.p(1) != [0.2, 1.0] for L in elt):
                raise ValueError(f"{path}: residual scaling differs from RRDBNet's")
    return model.eval()


def load(name, models_dir):
    """Load `name` (realesrgan-x4plus | realesrgan-x4fast) from the ncnn files in models_dir."""
    if name not in NAMES:
        raise ValueError(f"unknown Real-ESRGAN model {name!r}; one of {NAMES}")
    stem = os.path.join(models_dir, name)
    layers = ncnn.load(stem + ".param", stem + ".bin")
    model = RRDBNet() if name == "realesrgan-x4plus" else SRVGGNetCompact()
    return _fill(model, layers, stem + ".param")
