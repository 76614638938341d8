"""A fast training path for the student's attention blocks (same math as student.py).

student.window_attention stays the single source of truth; window_attention_fast is the
same function (outputs and gradients equal within float32 rounding, tested to 1e-5 in
tests/python/test_fastattn.py) for training on the CPU. In a training script:

    from ctsr.fastattn import use_fast_attention, keep_freed_memory
    keep_freed_memory()                          # once, at start-up (see below)
    model = use_fast_attention(Student(cfg))     # or: with fast_attention(model): ...

use_fast_attention replaces AttnBlock.forward on the model's instances only (student.py
and other models keep the reference) by the same computation run channels_last, with
window_attention_fast for the attention and gelu_tanh_fast for the MLP's GELU (ATen's
tanh-approximation GELU costs ~25 ms forward + backward per block here, about as much as
the fast attention); use_fast_attention(model, False) undoes it.

Implementations (BACKEND, from $CTSR_FASTATTN, default "auto"):
  * "cpp": fastattn.cpp, fused forward and backward kernels over NHWC tensors, one cell of
    the window grid at a time in L1 (no padding, no masks: a cut cell has fewer tokens),
    parallel over cells (torch's OpenMP threads); and a fused GELU. Built at first use
    (~30 s, cached in ~/.cache/torch_extensions) with g++, ninja-build and Debian's
    libtorch-dev (`apt-get install -y libtorch-dev`; pybind11 is not needed), with
    -march=native: a cache shared by machines with different CPUs must not be used.
    float32 CPU only.
  * "py": _WindowAttnPy, plain PyTorch: one permute copy into a [3, B, T, d] layout
    (B = N * windows * heads, T = w*w), bmm on chunks of CHUNK matrices whose softmax
    probabilities are kept for backward, masking only when H or W is not a multiple of w.
  "auto" takes "cpp" for float32 CPU tensors when it builds, else "py".

Backward (both), per window and head; s = d^-0.5, P = softmax(s Q K^T + M) with M = -inf
on keys outside the image, O = P V, dO the incoming gradient:
    dV = P^T dO
    dP = dO V^T
    dS = P * (dP - D),  D_i = rowsum_j(dP * P)_i = dO_i . O_i   (softmax backward; dS = 0
                                                                 where P = 0)
    dQ = s dS K
    dK = s dS^T Q
The C++ kernels keep only lse_i = log sum_j exp(s Q_i . K_j) from the forward and
recompute P_ij = exp(s Q_i . K_j - lse_i) in backward, so nothing of size T*T per window
is stored; the PyTorch path keeps P (in chunks).

Where the time went (CPU VM, bench/attn_train_bench.py): besides slow small bmm calls, the
reference allocates several 32 MiB score tensors per call ([16, 64, 2, 64, 64] floats for
16 crops of 64x64); glibc malloc serves blocks that large by a fresh mmap, and each page
fault on fresh memory costs ~15-40 us on this VM, so a 32 MiB allocation costs ~0.1-0.3 s,
more than the products. keep_freed_memory() makes glibc keep freed memory for reuse (no
mmap for big blocks, no trimming of the heap): it speeds up every variant, the reference
most, and steadies the timings; it is process-wide and costs resident memory (the peak of
the step stays mapped).
"""
import contextlib
import ctypes
import os
import warnings

import torch
import torch.nn.functional as F

from .student import AttnBlock

# "auto": C++ kernels if they build, else PyTorch; "cpp": C++ or fail; "py": PyTorch only
BACKEND = os.environ.get("CTSR_FASTATTN", "auto")
# matrices (one window, one head) per chunk of the PyTorch path: 64 x [64, 64] scores = 1 MiB
CHUNK = 64


def _layout(n, c, heads, h, wd, w):
    d = c // heads
    ph, pw = (-h) % w, (-wd) % w
    hh, ww = (h + ph) // w, (wd + pw) // w
    return d, ph, pw, hh, ww


class _WindowAttnPy(torch.autograd.Function):
    """Pure PyTorch implementation (chunked bmm, hand-written backward)."""

    @staticmethod
    def forward(ctx, qkv, heads, w):
        n, c3, h, wd = qkv.shape
        c = c3 // 3
        d, ph, pw, hh, ww = _layout(n, c, heads, h, wd, w)
        b, t, scale = n * hh * ww * heads, w * w, d ** -0.5
        x = F.pad(qkv, (0, pw, 0, ph)) if ph or pw else qkv
        # NHWC [N, hh, w, ww, w, 3, heads, d] -> [3, N, hh, ww, heads, w, w, d] = [3, B, T, d],
        # q scaled by d^-0.5 on the way
        src = x.permute(0, 2, 3, 1).reshape(n, hh, w, ww, w, 3, heads, d)
        src = src.permute(5, 0, 1, 3, 6, 2, 4, 7)
        xw = torch.empty(src.shape, dtype=qkv.dtype, device=qkv.device)
        torch.mul(src[0], scale, out=xw[0])
        xw[1:].copy_(src[1:])
        xw = xw.view(3, b, t, d)
        q, k, v = xw[0], xw[1], xw[2]
        mask = None
        if ph or pw:
            valid = torch.ones(h, wd, dtype=torch.bool, device=qkv.device)
            valid = F.pad(valid, (0, pw, 0, ph)).view(hh, w, ww, w).permute(0, 2, 1, 3)
            mask = (~valid.reshape(1, hh, ww, 1, 1, t)).expand(n, hh, ww, heads, 1, t)
            mask = mask.reshape(b, 1, t)
        o = torch.empty_like(q)
        probs = []
        for i in range(0, b, CHUNK):
            j = min(b, i + CHUNK)
            s = torch.bmm(q[i:j], k[i:j].transpose(1, 2))
            if mask is not None:
                s.masked_fill_(mask[i:j], float("-inf"))
            p = torch.softmax(s, dim=-1)
            torch.bmm(p, v[i:j], out=o[i:j])
            probs.append(p)
        ctx.save_for_backward(xw, o)
        ctx.probs = probs
        ctx.dims = (n, c, h, wd, heads, w)
        # [B, T, d] = [N, hh, ww, heads, w, w, d] -> NHWC [N, hh, w, ww, w, heads, d]
        y = o.view(n, hh, ww, heads, w, w, d).permute(0, 1, 4, 2, 5, 3, 6)
        y = y.reshape(n, hh * w, ww * w, c).permute(0, 3, 1, 2)  # channels_last NCHW
        return y[:, :, :h, :wd] if ph or pw else y

    @staticmethod
    def backward(ctx, go):
        xw, o = ctx.saved_tensors
        probs = ctx.probs  # kept (not freed here) so that retain_graph works
        n, c, h, wd, heads, w = ctx.dims
        d, ph, pw, hh, ww = _layout(n, c, heads, h, wd, w)
        b, t, scale = n * hh * ww * heads, w * w, d ** -0.5
        if ph or pw:
            go = F.pad(go, (0, pw, 0, ph))
        go = go.permute(0, 2, 3, 1).reshape(n, hh, w, ww, w, heads, d)
        go = go.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, t, d)
        dsum = (go * o).sum(-1, keepdim=True)  # rowsum(dP * P) = rowsum(dO * O)
        q, k, v = xw[0], xw[1], xw[2]
        gw = torch.empty_like(xw)
        gq, gk, gv = gw[0], gw[1], gw[2]
        for ci, i in enumerate(range(0, b, CHUNK)):
            j = i + probs[ci].shape[0]
            p, g = probs[ci], go[i:j]
            torch.bmm(p.transpose(1, 2), g, out=gv[i:j])
            ds = torch.bmm(g, v[i:j].transpose(1, 2)).sub_(dsum[i:j]).mul_(p)
            torch.bmm(ds, k[i:j], out=gq[i:j])  # gradient of the scaled q
            torch.bmm(ds.transpose(1, 2), q[i:j], out=gk[i:j])
        # [3, N, hh, ww, heads, w, w, d] -> NHWC [N, hh, w, ww, w, 3, heads, d], q part scaled
        gx = torch.empty(n, hh * w, ww * w, 3 * c, dtype=go.dtype, device=go.device)
        dst = gx.view(n, hh, w, ww, w, 3, heads, d).permute(5, 0, 1, 3, 6, 2, 4, 7)
        gw = gw.view(dst.shape)
        torch.mul(gw[0], scale, out=dst[0])
        dst[1:].copy_(gw[1:])
        gx = gx.permute(0, 3, 1, 2)  # channels_last NCHW
        return (gx[:, :, :h, :wd] if ph or pw else gx), None, None


class _WindowAttnCpp(torch.autograd.Function):
    """The fused C++ kernels of fastattn.cpp; saves x, y and the log-sum-exp of each softmax
    row, and recomputes P = exp(s * Q K^T - lse) in backward."""

    @staticmethod
    def forward(ctx, qkv, heads, w):
        x = qkv.permute(0, 2, 3, 1).contiguous()  # NHWC; free when qkv is channels_last
        y, lse = _ext().forward(x, heads, w)
        ctx.save_for_backward(x, y, lse)
        ctx.dims = (heads, w)
        return y.permute(0, 3, 1, 2)  # channels_last NCHW

    @staticmethod
    def backward(ctx, gy):
        x, y, lse = ctx.saved_tensors
        gx = _ext().backward(x, y, lse, gy.permute(0, 2, 3, 1).contiguous(), *ctx.dims)
        return gx.permute(0, 3, 1, 2), None, None


class _GeluTanhCpp(torch.autograd.Function):
    """F.gelu(x, approximate="tanh") = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3), by the
    C++ kernels; backward: dy/dx = s + x s (1 - s) 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2),
    s = sigmoid(2z)."""

    @staticmethod
    def forward(ctx, x):
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        ctx.save_for_backward(x)
        return _ext().gelu_forward(x)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        if gy.stride() != x.stride():
            gy = torch.empty_like(x).copy_(gy)
        return _ext().gelu_backward(gy, x)


def gelu_tanh_fast(x):
    """F.gelu(x, approximate="tanh") (C++ for float32 CPU tensors when available)."""
    if x.dtype == torch.float32 and x.device.type == "cpu" and cpp_available():
        return _GeluTanhCpp.apply(x)
    return F.gelu(x, approximate="tanh")


_EXT = None


def _ext():
    """Build (first use, ~30 s; cached in ~/.cache/torch_extensions) and load fastattn.cpp."""
    global _EXT
    if _EXT is None:
        from torch.utils import cpp_extension
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastattn.cpp")
        cpp_extension.load(name="ctsr_fastattn", sources=[src], is_python_module=False,
                           extra_cflags=["-O3", "-march=native", "-fopenmp"],
                           extra_ldflags=["-fopenmp"])
        _EXT = torch.ops.ctsr_fastattn
    return _EXT


def cpp_available():
    """True when the C++ kernels build and load here (else the PyTorch path is used)."""
    global BACKEND
    if BACKEND == "py":
        return False
    try:
        _ext()
        return True
    except Exception as e:  # no compiler / ninja / libtorch-dev
        if BACKEND == "cpp":
            raise
        warnings.warn(f"fastattn: C++ kernels unavailable ({e}); using the PyTorch path")
        BACKEND = "py"
        return False


def window_attention_fast(qkv, heads, w):
    """qkv: [N, 3C, H, W] -> [N, C, H, W]; same function as student.window_attention.

    Uses the C++ kernels for float32 CPU tensors when they are available (BACKEND "auto" or
    "cpp"), else the PyTorch implementation."""
    if qkv.dtype == torch.float32 and qkv.device.type == "cpu" and cpp_available():
        return _WindowAttnCpp.apply(qkv, heads, w)
    return _WindowAttnPy.apply(qkv, heads, w)


def _fast_forward(self, x):
    """AttnBlock.forward of student.py, run channels_last, with window_attention_fast and
    gelu_tanh_fast."""
    x = x.contiguous(memory_format=torch.channels_last)
    x = x + self.proj(window_attention_fast(self.qkv(self.norm1(x)), self.heads, self.window))
    return x + self.mlp2(gelu_tanh_fast(self.mlp1(self.norm2(x))))


def use_fast_attention(model, on=True):
    """Switch every AttnBlock of `model` to the fast path (on=False: back to the reference).
    Only these instances change. Returns the model."""
    for m in model.modules():
        if isinstance(m, AttnBlock):
            if on:
                m.forward = _fast_forward.__get__(m)
            else:
                m.__dict__.pop("forward", None)
    return model


@contextlib.contextmanager
def fast_attention(model):
    """Context manager form of use_fast_attention."""
    use_fast_attention(model, True)
    try:
        yield model
    finally:
        use_fast_attention(model, False)


def keep_freed_memory(limit=1 << 30):
    """Make glibc malloc keep freed memory for reuse instead of returning it to the OS
    (mmap threshold and trim threshold raised to `limit` bytes), so that big tensors of
    later steps do not page-fault on fresh memory. Process-wide; call once at start-up.
    Same as MALLOC_MMAP_THRESHOLD_=<limit> MALLOC_TRIM_THRESHOLD_=<limit> in the
    environment. Returns False where it could not be set (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, int(limit)) and libc.mallopt(-1, int(limit)))
    except (OSError, AttributeError):  # M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1
        return False
