"""Tests of training/ctsr/fastattn.py: the fast window attention is student.window_attention.

The C++ kernels are built at first use (~30 s once, then cached); where they cannot be built
their tests fail (scripts/deps.sh installs what they need), and the PyTorch path is tested
either way.
"""
import pytest
import torch
import torch.nn.functional as F

from ctsr import fastattn
from ctsr.student import CONFIGS, AttnBlock, Student, window_attention

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-5

# (N, C, heads, H, W, window): edge cells (13x21, 9x16, 1x1), heads 1/2/4, d = 4..48; w = 8
# with d = 8, 16, 32 takes the vector kernels of the C++ path, the others the scalar ones
SHAPES = [
    (2, 32, 2, 13, 21, 8),
    (3, 8, 1, 13, 21, 8),
    (2, 32, 2, 16, 24, 8),
    (1, 32, 4, 9, 16, 8),
    (2, 64, 2, 11, 8, 8),
    (2, 12, 1, 7, 5, 4),
    (1, 96, 2, 10, 9, 3),
    (2, 16, 2, 17, 17, 16),
    (1, 8, 1, 1, 1, 8),
]

IMPLS = ["py", "cpp"]


def _impl(name):
    if name == "py":
        return fastattn._WindowAttnPy.apply
    if not fastattn.cpp_available():
        pytest.fail("C++ kernels unavailable: scripts/deps.sh installs g++, ninja-build, "
                    "libtorch-dev")
    return fastattn._WindowAttnCpp.apply


def _max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_reference(impl, shape, channels_last):
    n, c, heads, h, w, win = shape
    f = _impl(impl)
    torch.manual_seed(sum(shape))
    qkv = torch.randn(n, 3 * c, h, w)
    if channels_last:
        qkv = qkv.contiguous(memory_format=torch.channels_last)
    qkv.requires_grad_()
    g = torch.randn(n, c, h, w)
    y_ref = window_attention(qkv, heads, win)
    gx_ref, = torch.autograd.grad(y_ref, qkv, g)
    y = f(qkv, heads, win)
    gx, = torch.autograd.grad(y, qkv, g)
    assert y.shape == y_ref.shape and gx.shape == qkv.shape
    assert _max_diff(y, y_ref) < TOL
    assert _max_diff(gx, gx_ref) < TOL


def test_python_path_gradcheck():
    torch.manual_seed(0)
    qkv = torch.randn(2, 12, 5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: fastattn._WindowAttnPy.apply(x, 2, 4), (qkv,))


def test_dispatch():
    x = torch.randn(1, 24, 8, 8)
    y = fastattn.window_attention_fast(x, 2, 4)
    assert torch.allclose(y, window_attention(x, 2, 4), atol=TOL)
    yd = fastattn.window_attention_fast(x.double(), 2, 4)  # float64: always the PyTorch path
    assert yd.dtype == torch.float64
    assert torch.allclose(yd, window_attention(x.double(), 2, 4), atol=1e-12)


@pytest.mark.parametrize("shape,channels_last", [((2, 64, 9, 13), True), ((3, 5, 7), False)])
def test_gelu_matches_reference(shape, channels_last):
    if not fastattn.cpp_available():
        pytest.fail("C++ kernels unavailable: scripts/deps.sh installs g++, ninja-build, "
                    "libtorch-dev")
    torch.manual_seed(0)
    x = torch.randn(shape) * 2
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    g = torch.randn(shape)
    y_ref = F.gelu(x, approximate="tanh")
    gx_ref, = torch.autograd.grad(y_ref, x, g)
    y = fastattn.gelu_tanh_fast(x)
    gx, = torch.autograd.grad(y, x, g)
    assert y.stride() == y_ref.stride()
    assert _max_diff(y, y_ref) < TOL
    assert _max_diff(gx, gx_ref) < TOL


def _student_pair():
    torch.manual_seed(0)
    ref = Student(CONFIGS["default"])
    with torch.no_grad():  # FiLM starts at zero: make the blocks non-trivial
        for b in ref.blocks:
            b.film.weight.normal_(0, 0.3)
            b.film.bias.normal_(0, 0.3)
    fast = Student(CONFIGS["default"])
    fast.load_state_dict(ref.state_dict())
    return ref, fastattn.use_fast_attention(fast)


@pytest.mark.parametrize("impl", IMPLS)
def test_student_same_output_and_gradients(impl, monkeypatch):
    _impl(impl)  # fails for "cpp" where it does not build
    monkeypatch.setattr(fastattn, "BACKEND", impl)
    ref, fast = _student_pair()
    torch.manual_seed(1)
    img = torch.rand(2, 3, 21, 35)  # not multiples of the window (8)
    t = torch.tensor([0.2, 0.7])
    target = torch.rand(2, 3, 42, 70)
    out = {}
    for name, m in (("ref", ref), ("fast", fast)):
        m.zero_grad()
        y = m(img, t)
        F.l1_loss(y, target).backward()
        out[name] = (y.detach(), {k: p.grad.clone() for k, p in m.named_parameters()})
    assert _max_diff(out["fast"][0], out["ref"][0]) < TOL
    for k, g in out["ref"][1].items():
        # within 1e-5, and within 1e-5 of each tensor's scale (gradients here are <= 0.1)
        assert _max_diff(out["fast"][1][k], g) <= TOL * min(1.0, g.abs().max().item()), k


def test_switch_is_per_instance_and_reversible():
    ref, fast = _student_pair()
    blocks = [m for m in fast.modules() if isinstance(m, AttnBlock)]
    assert blocks and all("forward" in m.__dict__ for m in blocks)
    assert not any("forward" in m.__dict__ for m in ref.modules() if isinstance(m, AttnBlock))
    fastattn.use_fast_attention(fast, False)
    assert not any("forward" in m.__dict__ for m in blocks)
    with fastattn.fast_attention(fast):
        assert all("forward" in m.__dict__ for m in blocks)
    assert not any("forward" in m.__dict__ for m in blocks)
    img = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(fast(img, 0.5), ref(img, 0.5))  # the reference again, bit for bit


def test_fallback_when_cpp_does_not_build(monkeypatch):
    def no_build():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(fastattn, "BACKEND", "auto")
    monkeypatch.setattr(fastattn, "_ext", no_build)
    x = torch.randn(2, 24, 9, 10)
    with pytest.warns(UserWarning, match="PyTorch path"):
        y = fastattn.window_attention_fast(x, 2, 4)
    assert fastattn.BACKEND == "py"
    assert _max_diff(y, window_attention(x, 2, 4)) < TOL
