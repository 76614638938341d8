"""The CTSR student network: the single source of truth for the architecture.

The Vulkan engine (engine/) reproduces this module exactly; tests/data holds golden
vectors exported from it (training/ctsr/golden.py). Any change here is a format change:
bump FORMAT_VERSION and update the engine.

Definition (NCHW, images in [0, 1], one timestep t in [0, 1]):

  emb   = [sin(t*S*f_i), cos(t*S*f_i)],  f_i = exp(-ln(10000) * i / (E/2)),  i < E/2
  z     = silu(fc2(silu(fc1(emb))))                      (host side in the engine)
  g_b, b_b = split(film_b(z))                            (per block b, C each)

  x     = head(img)                                      3x3 conv 3 -> C
  for b in blocks:
      h = conv2(act(conv1(x)))                           3x3 convs C -> C
      x = x + h * (1 + g_b) + b_b                        FiLM, skip
      if b in attn_blocks:
          x = x + proj(wattn(qkv(ln1(x))))               LayerNorm over C, 1x1 convs
          x = x + mlp2(gelu(mlp1(ln2(x))))               gelu = tanh approximation
  y     = pixel_shuffle(tail(x), s) + bilinear_up(img, s)  tail: 3x3 conv C -> 3*s*s
  out   = clamp(y, 0, 1)

Convolutions pad with zeros. bilinear_up is F.interpolate(mode="bilinear",
align_corners=False).

Window attention edge rule: windows are the w x w cells of a grid anchored at pixel
(0, 0). A pixel attends to the pixels of its own cell that lie inside the image; cells
cut by the right or bottom edge are simply smaller. (Implemented as zero padding to a
multiple of w with the padded keys masked out; every cell holds its top-left pixel, so
no softmax row is empty.) Heads split the C channels into contiguous groups of C/heads;
scores are scaled by (C/heads)^-0.5. qkv output channels are ordered [q | k | v].
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT_VERSION = 1

CONFIGS = {
    # about 100k MACs per input pixel: 1080p -> 4K in real time on a modern GPU
    "default": dict(scale=2, channels=32, blocks=4, attn_blocks=[1, 3], window=8, heads=2,
                    mlp_ratio=2, act="lrelu", temb_dim=32, temb_hidden=64, temb_scale=100.0),
    # about 10k MACs per input pixel: for CPUs
    "tiny": dict(scale=2, channels=12, blocks=2, attn_blocks=[1], window=8, heads=1,
                 mlp_ratio=2, act="lrelu", temb_dim=32, temb_hidden=64, temb_scale=100.0),
}

ACTS = ("relu", "lrelu", "silu")
LRELU_SLOPE = 0.1


def validate_config(cfg):
    c = dict(cfg)
    need = ("scale", "channels", "blocks", "attn_blocks", "window", "heads", "mlp_ratio",
            "act", "temb_dim", "temb_hidden", "temb_scale")
    for k in need:
        if k not in c:
            raise ValueError(f"config lacks '{k}'")
    if c["scale"] not in (2, 3, 4):
        raise ValueError("scale must be 2, 3 or 4")
    if c["channels"] < 4 or c["channels"] % 4:
        raise ValueError("channels must be a positive multiple of 4")
    if c["channels"] % c["heads"] or (c["channels"] // c["heads"]) % 4:
        raise ValueError("channels/heads must be a multiple of 4")
    if c["act"] not in ACTS:
        raise ValueError(f"act must be one of {ACTS}")
    if c["temb_dim"] % 2:
        raise ValueError("temb_dim must be even")
    if any(b < 0 or b >= c["blocks"] for b in c["attn_blocks"]):
        raise ValueError("attn_blocks out of range")
    if not 1 <= c["window"] <= 16:
        raise ValueError("window must be in 1..16")
    return c


def act_fn(name):
    if name == "relu":
        return F.relu
    if name == "lrelu":
        return lambda x: F.leaky_relu(x, LRELU_SLOPE)
    return F.silu


def timestep_embedding(t, dim, scale):
    """t: tensor [N] in [0, 1] -> [N, dim]."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(10000.0) * i / half)
    arg = t.float()[:, None] * scale * freqs[None]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class ChannelLN(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias,
                            1e-5).permute(0, 3, 1, 2)


def window_attention(qkv, heads, w):
    """qkv: [N, 3C, H, W] -> [N, C, H, W] under the edge rule of the module docstring."""
    n, c3, h, wd = qkv.shape
    c = c3 // 3
    d = c // heads
    ph, pw = (-h) % w, (-wd) % w
    x = F.pad(qkv, (0, pw, 0, ph))
    valid = F.pad(torch.ones(1, 1, h, wd, device=qkv.device), (0, pw, 0, ph))
    hh, ww = (h + ph) // w, (wd + pw) // w
    # [N, 3C, hh, w, ww, w] -> [N, hh, ww, w*w, 3C]
    x = x.view(n, c3, hh, w, ww, w).permute(0, 2, 4, 3, 5, 1).reshape(n, hh * ww, w * w, c3)
    m = valid.view(1, 1, hh, w, ww, w).permute(0, 2, 4, 3, 5, 1).reshape(1, hh * ww, w * w)
    q, k, v = x[..., :c], x[..., c:2 * c], x[..., 2 * c:]
    q = q.reshape(n, hh * ww, w * w, heads, d).transpose(2, 3)  # N, nW, heads, w*w, d
    k = k.reshape(n, hh * ww, w * w, heads, d).transpose(2, 3)
    v = v.reshape(n, hh * ww, w * w, heads, d).transpose(2, 3)
    s = (q @ k.transpose(-1, -2)) * (d ** -0.5)
    s = s.masked_fill(m[:, :, None, None, :] == 0, float("-inf"))
    a = torch.softmax(s, dim=-1) @ v  # N, nW, heads, w*w, d
    a = a.transpose(2, 3).reshape(n, hh, ww, w, w, c).permute(0, 5, 1, 3, 2, 4)
    a = a.reshape(n, c, hh * w, ww * w)
    return a[:, :, :h, :wd]


class AttnBlock(nn.Module):
    def __init__(self, c, heads, window, mlp_ratio):
        super().__init__()
        self.heads, self.window = heads, window
        self.norm1 = ChannelLN(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        self.norm2 = ChannelLN(c)
        self.mlp1 = nn.Conv2d(c, mlp_ratio * c, 1)
        self.mlp2 = nn.Conv2d(mlp_ratio * c, c, 1)

    def forward(self, x):
        x = x + self.proj(window_attention(self.qkv(self.norm1(x)), self.heads, self.window))
        return x + self.mlp2(F.gelu(self.mlp1(self.norm2(x)), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, c, hidden, attn, cfg):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.film = nn.Linear(hidden, 2 * c)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.act = act_fn(cfg["act"])
        self.attn = AttnBlock(c, cfg["heads"], cfg["window"], cfg["mlp_ratio"]) if attn else None

    def forward(self, x, z):
        g, b = self.film(z).chunk(2, dim=1)
        h = self.conv2(self.act(self.conv1(x)))
        x = x + h * (1 + g[:, :, None, None]) + b[:, :, None, None]
        if self.attn is not None:
            x = self.attn(x)
        return x


class TimestepMLP(nn.Module):
    def __init__(self, dim, hidden, scale):
        super().__init__()
        self.dim, self.scale = dim, scale
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, t):
        e = timestep_embedding(t, self.dim, self.scale)
        return F.silu(self.fc2(F.silu(self.fc1(e))))


class Student(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        cfg = validate_config(cfg)
        self.cfg = cfg
        c, s = cfg["channels"], cfg["scale"]
        self.temb = TimestepMLP(cfg["temb_dim"], cfg["temb_hidden"], cfg["temb_scale"])
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.ModuleList(
            Block(c, cfg["temb_hidden"], i in cfg["attn_blocks"], cfg) for i in range(cfg["blocks"]))
        self.tail = nn.Conv2d(c, 3 * s * s, 3, padding=1)

    def forward(self, img, t):
        """img: [N, 3, H, W] in [0, 1]; t: float or tensor [N] in [0, 1]."""
        if not torch.is_tensor(t):
            t = torch.full((img.shape[0],), float(t), device=img.device)
        z = self.temb(t)
        x = self.head(img)
        for blk in self.blocks:
            x = blk(x, z)
        s = self.cfg["scale"]
        y = F.pixel_shuffle(self.tail(x), s)
        y = y + F.interpolate(img, scale_factor=s, mode="bilinear", align_corners=False)
        return y.clamp(0.0, 1.0)


def macs_per_pixel(cfg):
    """Multiply-accumulates per input pixel of the image network (the MLP runs once per t)."""
    c, s, w = cfg["channels"], cfg["scale"], cfg["window"]
    m = 9 * 3 * c + 9 * c * 3 * s * s + cfg["blocks"] * 2 * 9 * c * c
    hid = cfg["mlp_ratio"] * c
    per_attn = 3 * c * c + c * c + 2 * c * hid + 2 * w * w * c  # qkv, proj, mlp, QK^T + AV
    return m + len(cfg["attn_blocks"]) * per_attn


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def config_json(cfg):
    return json.dumps(validate_config(cfg), sort_keys=True)
