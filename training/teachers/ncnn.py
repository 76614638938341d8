"""Reader for ncnn model files (.param text graph + .bin weights), and a small graph runner.

.param (text): a magic line `7767517`, a line `<layer count> <blob count>`, then one line per
layer: `<type> <name> <n_in> <n_out> <in blobs...> <out blobs...> <k=v ...>`. A key k >= 0 is
a scalar (int or float); a key -23300-k holds an array `-233xx=n,v1,...,vn` for id k.

.bin: the layers' weights, concatenated in .param layer order, no header. For Convolution /
Deconvolution: the weight blob (`6=` values, layout out, in, kh, kw) preceded by a 4-byte
tag (0x01306B47: fp16 values, padded to 4 bytes; 0: raw fp32), then the bias (`5=1`) as raw
fp32 without a tag. PReLU: `0=` slopes as raw fp32. The layers used by the teachers carry no
other weights.

`NcnnGraph` executes the parsed graph with PyTorch (the subset the teachers use: Input,
Split, Concat, Convolution, Deconvolution, PReLU, Eltwise, BinaryOp add/sub/mul, Interp
nearest/bilinear, PixelShuffle). It is a literal reading of the file, used to cross-check
the hand-written architectures in waifu2x.py and realesrgan.py.
"""
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0


class Layer:
    __slots__ = ("type", "name", "bottoms", "tops", "params", "weights")

    def __init__(self, type_, name, bottoms, tops, params):
        self.type, self.name, self.bottoms, self.tops, self.params = type_, name, bottoms, tops, params
        self.weights = {}

    def p(self, key, default=None):
        return self.params.get(key, default)

    def __repr__(self):
        return f"Layer({self.type} {self.name} {self.bottoms}->{self.tops} {self.params})"


def _num(s):
    try:
        return int(s)
    except ValueError:
        return float(s)


def parse_param(path):
    """Parse a .param file -> list of Layer (weights not loaded)."""
    with open(path, "r") as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if int(lines[0]) != MAGIC:
        raise ValueError(f"{path}: bad magic {lines[0]}")
    n_layers, _n_blobs = (int(v) for v in lines[1].split())
    layers = []
    for ln in lines[2:2 + n_layers]:
        tok = ln.split()
        type_, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        bottoms = tok[4:4 + n_in]
        tops = tok[4 + n_in:4 + n_in + n_out]
        params = {}
        for kv in tok[4 + n_in + n_out:]:
            k, v = kv.split("=", 1)
            k = int(k)
            if k <= -23300:
                vals = v.split(",")
                params[-(k + 23300)] = [_num(x) for x in vals[1:1 + int(vals[0])]]
            else:
                params[k] = _num(v)
        layers.append(Layer(type_, name, bottoms, tops, params))
    if len(layers) != n_layers:
        raise ValueError(f"{path}: expected {n_layers} layers, found {len(layers)}")
    return layers


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def raw_f32(self, n):
        end = self.pos + 4 * n
        if end > len(self.data):
            raise ValueError("bin file truncated")
        a = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos = end
        return a

    def tagged(self, n):
        if self.pos + 4 > len(self.data):
            raise ValueError("bin file truncated")
        (tag,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        if tag == TAG_FP16:
            nb = (2 * n + 3) // 4 * 4
            if self.pos + nb > len(self.data):
                raise ValueError("bin file truncated")
            a = np.frombuffer(self.data, dtype="<f2", count=n, offset=self.pos).astype(np.float32)
            self.pos += nb
            return a
        if tag == TAG_FP32:
            return self.raw_f32(n)
        raise ValueError(f"unsupported weight tag 0x{tag:08x} at offset {self.pos - 4}")


def load_bin(path, layers):
    """Attach weights from `path` to the parsed layers (in place); returns layers."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    for L in layers:
        if L.type in ("Convolution", "Deconvolution", "ConvolutionDepthWise"):
            n = L.p(6)
            L.weights["weight"] = r.tagged(n)
            if L.p(5, 0):
                L.weights["bias"] = r.raw_f32(L.p(0))
        elif L.type == "PReLU":
            L.weights["slope"] = r.raw_f32(L.p(0, 1))
        elif L.type in ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp",
                        "PixelShuffle", "ReLU", "Sigmoid", "Crop", "Padding"):
            pass
        else:
            raise ValueError(f"layer type {L.type} ({L.name}) not supported")
    if r.pos != len(data):
        raise ValueError(f"{path}: {len(data) - r.pos} bytes left after the last layer")
    return layers


def load(param_path, bin_path):
    return load_bin(bin_path, parse_param(param_path))


def conv_tensors(L, in_ch):
    """(weight, bias) torch tensors of a Convolution/Deconvolution layer.

    Convolution weight: [out, in, k, k]. Deconvolution: ncnn stores [out, in, k, k] too; it
    maps onto PyTorch's ConvTranspose2d weight [in, out, k, k] by a transpose of the first two
    axes, without spatial flipping."""
    out_ch, k = L.p(0), L.p(1)
    w = torch.from_numpy(L.weights["weight"].reshape(out_ch, in_ch, k, k).copy())
    if L.type == "Deconvolution":
        w = w.transpose(0, 1).contiguous()
    b = L.weights.get("bias")
    b = torch.from_numpy(b.copy()) if b is not None else torch.zeros(out_ch)
    return w, b


def convs(layers):
    """The Convolution/Deconvolution layers in file order."""
    return [L for L in layers if L.type in ("Convolution", "Deconvolution")]


def _activation(L, x):
    act = L.p(9, 0)
    if act == 0:
        return x
    if act == 1:
        return F.relu(x)
    if act == 2:
        return F.leaky_relu(x, (L.p(10) or [0.0])[0])
    if act == 3:
        lo, hi = L.p(10)
        return x.clamp(lo, hi)
    if act == 4:
        return torch.sigmoid(x)
    raise ValueError(f"{L.name}: activation {act} not supported")


class NcnnGraph(nn.Module):
    """Executes an ncnn graph literally (NCHW float32, batch allowed)."""

    def __init__(self, layers, input_blob=None, output_blob=None):
        super().__init__()
        self.layers = layers
        self.input_blob = input_blob or next(L.tops[0] for L in layers if L.type == "Input")
        self.output_blob = output_blob or layers[-1].tops[0]
        self._w = {}
        for L in layers:
            if "weight" in L.weights:
                k, kh = L.p(1), L.p(11, L.p(1))
                n_in = L.p(6) // (L.p(0) * k * kh)
                self._w[L.name] = conv_tensors(L, n_in)
            elif "slope" in L.weights:
                self._w[L.name] = torch.from_numpy(L.weights["slope"].copy())

    @classmethod
    def from_files(cls, param_path, bin_path):
        return cls(load(param_path, bin_path))

    @torch.no_grad()
    def forward(self, x):
        blobs = {self.input_blob: x}
        for L in self.layers:
            t = L.type
            if t == "Input":
                continue
            ins = [blobs[b] for b in L.bottoms]
            if t == "Split":
                for o in L.tops:
                    blobs[o] = ins[0]
                continue
            if t == "Convolution":
                w, b = self._w[L.name]
                y = F.conv2d(ins[0], w, b, stride=L.p(3, 1), padding=L.p(4, 0), dilation=L.p(2, 1))
                y = _activation(L, y)
            elif t == "Deconvolution":
                w, b = self._w[L.name]
                y = F.conv_transpose2d(ins[0], w, b, stride=L.p(3, 1), padding=L.p(4, 0),
                                       dilation=L.p(2, 1))
                y = _activation(L, y)
            elif t == "PReLU":
                y = F.prelu(ins[0], self._w[L.name])
            elif t == "Concat":
                if L.p(0, 0) != 0:
                    raise ValueError("Concat only along channels")
                y = torch.cat(ins, dim=1)
            elif t == "Eltwise":
                op, coeffs = L.p(0, 1), L.p(1) or [1.0] * len(ins)
                if op == 1:
                    y = sum(c * v for c, v in zip(coeffs, ins))
                elif op == 0:
                    y = ins[0] * ins[1]
                elif op == 2:
                    y = torch.maximum(ins[0], ins[1])
                else:
                    raise ValueError(f"Eltwise op {op}")
            elif t == "BinaryOp":
                op = L.p(0, 0)
                y = {0: torch.add, 1: torch.sub, 2: torch.mul}[op](ins[0], ins[1])
            elif t == "Interp":
                mode = {1: "nearest", 2: "bilinear"}[L.p(0, 0)]
                kw = {} if mode == "nearest" else {"align_corners": False}
                y = F.interpolate(ins[0], scale_factor=(L.p(1, 1.0), L.p(2, 1.0)), mode=mode, **kw)
            elif t == "PixelShuffle":
                y = F.pixel_shuffle(ins[0], L.p(0))
            else:
                raise ValueError(f"layer type {t} not supported by NcnnGraph")
            blobs[L.tops[0]] = y
        return blobs[self.output_blob]
