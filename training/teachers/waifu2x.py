"""waifu2x upconv_7 (photo) as a PyTorch module, loaded from the original ncnn files.

Architecture (read from the .param, checked on load):
    x   = edge-replicate pad(img, 7)
    x   = lrelu_0.1(conv3x3_valid(x))  for 3->16->32->64->128->128->256   (6 convs)
    out = conv_transpose(x, 256->3, k=4, stride=2, padding=3)               (2W x 2H)
Images RGB in [0, 1]; the output is not clamped by the network (clamp before 8 bits).

Variants (files <variant>.param/.bin in the model directory):
    scale2.0x_model                 no denoising      (noise level -1)
    noise0..noise3_scale2.0x_model  JPEG-noise removal, increasing strength (levels 0..3)
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import ncnn

PAD = 7
SCALE = 2
CHANNELS = (3, 16, 32, 64, 128, 128, 256)
VARIANTS = ("scale2.0x_model",) + tuple(f"noise{i}_scale2.0x_model" for i in range(4))


def variant_name(noise):
    """noise level -1..3 (or a variant name) -> file stem."""
    if isinstance(noise, str):
        if noise not in VARIANTS:
            raise ValueError(f"unknown waifu2x variant {noise!r}; one of {VARIANTS}")
        return noise
    if noise == -1:
        return VARIANTS[0]
    if noise in (0, 1, 2, 3):
        return f"noise{noise}_scale2.0x_model"
    raise ValueError("noise level must be -1..3")


class Upconv7(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in zip(CHANNELS[:-1], CHANNELS[1:]))
        self.deconv = nn.ConvTranspose2d(CHANNELS[-1], 3, 4, stride=2, padding=3)

    def forward(self, img, pad=True):
        """img [N, 3, H, W] in [0, 1] -> [N, 3, 2H, 2W] (with pad=False: input already padded by 7,
        output 2(H-14) x 2(W-14))."""
        x = F.pad(img, (PAD,) * 4, mode="replicate") if pad else img
        for c in self.convs:
            x = F.leaky_relu(c(x), 0.1)
        return self.deconv(x)

    @classmethod
    def from_ncnn(cls, param_path, bin_path):
        layers = ncnn.load(param_path, bin_path)
        cv = ncnn.convs(layers)
        if len(cv) != 7 or cv[-1].type != "Deconvolution":
            raise ValueError(f"{param_path}: not an upconv_7 graph")
        m = cls()
        with torch.no_grad():
            for i, (L, mod) in enumerate(zip(cv[:6], m.convs)):
                if (L.p(0), L.p(1), L.p(4, 0), L.p(9), L.p(10)[0]) != (CHANNELS[i + 1], 3, 0, 2, 0.1):
                    raise ValueError(f"{L.name}: unexpected parameters {L.params}")
                w, b = ncnn.conv_tensors(L, CHANNELS[i])
                mod.weight.copy_(w)
                mod.bias.copy_(b)
            L = cv[6]
            if (L.p(0), L.p(1), L.p(3), L.p(4)) != (3, 4, 2, 3):
                raise ValueError(f"{L.name}: unexpected parameters {L.params}")
            w, b = ncnn.conv_tensors(L, CHANNELS[-1])
            m.deconv.weight.copy_(w)
            m.deconv.bias.copy_(b)
        return m.eval()


def load(model_dir, noise=-1):
    """Load a variant (noise level -1..3 or file stem) from `model_dir`."""
    stem = os.path.join(model_dir, variant_name(noise))
    return Upconv7.from_ncnn(stem + ".param", stem + ".bin")
