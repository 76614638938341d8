"""training/ctsr/distill.py: the decomposition is an orthogonal one, the terms' gradients lie in
their components, SWD measures distributions (not pixels), and the losses respond to t."""
import pytest
import torch
import torch.nn.functional as F

from ctsr import distill as Dl

pytestmark = pytest.mark.usefixtures("one_thread")


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_projectors_are_orthogonal_and_complementary():
    a, b = rand(2, 3, 16, 24, seed=1), rand(2, 3, 16, 24, seed=2)
    pr, pn = Dl.p_range, Dl.p_null
    assert torch.allclose(pr(a) + pn(a), a)
    assert torch.allclose(pr(pr(a)), pr(a), atol=1e-6)          # idempotent
    assert torch.allclose(pn(pn(a)), pn(a), atol=1e-6)
    assert pr(pn(a)).abs().max() < 1e-6                          # P_r P_n = 0
    assert abs(float((pr(a) * pn(b)).sum())) < 1e-3              # <P_r a, P_n b> = 0
    assert abs(float((pr(a) * b).sum() - (a * pr(b)).sum())) < 1e-3   # symmetric
    # P_r = A+ A with A the 2x2 box average: the range part is what the LR image determines
    assert torch.allclose(F.avg_pool2d(pr(a), 2), F.avg_pool2d(a, 2), atol=1e-6)
    assert F.avg_pool2d(pn(a), 2).abs().max() < 1e-6


def test_gradients_stay_in_their_component():
    y = rand(2, 3, 32, 32, seed=3)
    s = rand(2, 3, 32, 32, seed=4).requires_grad_(True)
    Dl.l1_per_example(Dl.p_range(s), Dl.p_range(y)).sum().backward()
    assert Dl.p_null(s.grad).abs().max() < 1e-7
    s.grad = None
    dirs = Dl.random_dirs(8, 48, torch.Generator().manual_seed(0))
    (Dl.l1_per_example(Dl.p_null(s), Dl.p_null(y)) + Dl.swd(Dl.p_null(s), Dl.p_null(y), dirs)).sum().backward()
    assert Dl.p_range(s.grad).abs().max() < 1e-7


def test_swd_matches_distributions_not_pixels():
    g = torch.Generator().manual_seed(0)
    dirs = Dl.random_dirs(16, 48, g)
    tex = Dl.p_null(rand(1, 3, 64, 64, seed=5))
    # the same texture moved by whole 2x2 blocks inside each 32x32 tile: other pixels, same
    # neighbourhood distribution (up to the tile's edge) -> small SWD; its blur -> large SWD
    moved = torch.roll(tex.reshape(1, 3, 2, 32, 2, 32), shifts=(8, 8), dims=(3, 5)).reshape(1, 3, 64, 64)
    blur = F.avg_pool2d(F.pad(tex, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert float(Dl.swd(tex, tex, dirs)) == 0.0
    d_moved, d_blur = float(Dl.swd(moved, tex, dirs)), float(Dl.swd(blur, tex, dirs))
    pix_moved, pix_blur = float((moved - tex).abs().mean()), float((blur - tex).abs().mean())
    assert pix_moved > pix_blur          # a pixel loss prefers the blur ...
    assert d_blur > 3 * d_moved          # ... SWD prefers the texture
    # the per-teacher form projects the student once and gives the same value
    one = Dl.swd_to_teachers(blur, [tex], [1.0], dirs)
    assert torch.allclose(one, Dl.swd(blur, tex, dirs))


def test_loss_weights_follow_t():
    y = rand(2, 3, 64, 64, seed=6)
    fids = [rand(2, 3, 64, 64, seed=7)]
    reals = [rand(2, 3, 64, 64, seed=8), rand(2, 3, 64, 64, seed=9)]
    s = y.clone()
    dirs = Dl.random_dirs(8, 48, torch.Generator().manual_seed(1))
    w = dict(ft=0.0)
    l0, _ = Dl.ctsr_loss(s, torch.zeros(2), y, fids, reals, [1.0, 0.5], dirs, w=w)
    l1, terms = Dl.ctsr_loss(s, torch.ones(2), y, fids, reals, [1.0, 0.5], dirs, w=w)
    assert float(l0) < 1e-6                       # the truth is the fidelity end's optimum
    assert float(l1) > 0.01 and terms["range"] < 1e-6   # ... not the realness end's
    # consistency: the same crop at two timesteps with different low bands is penalised
    s2 = torch.cat([y[:1], y[:1] + 0.1])
    _, terms = Dl.ctsr_loss(s2, torch.tensor([0.0, 1.0]), torch.cat([y[:1], y[:1]]),
                            [f[:1].repeat(2, 1, 1, 1) for f in fids],
                            [r[:1].repeat(2, 1, 1, 1) for r in reals], [1.0, 0.5], dirs,
                            pair=(torch.tensor([0]), torch.tensor([1])))
    assert abs(terms["cons"] - 0.1) < 1e-5
    # the naive ablation has no decomposition: same optimum at t = 0
    n0, _ = Dl.naive_loss(s, torch.zeros(2), y, fids, reals, [1.0, 0.5], dirs, w=w)
    assert float(n0) < 1e-6


def test_pick_fidelity_takes_the_closest_teacher_per_example():
    y = rand(2, 3, 8, 8, seed=10)
    near0 = torch.stack([y[0] + 0.01, y[1] + 0.3])
    near1 = torch.stack([y[0] + 0.3, y[1] + 0.01])
    f = Dl.pick_fidelity(y, [near0, near1])
    assert torch.allclose(f[0], near0[0]) and torch.allclose(f[1], near1[1])


def test_nss_moments_measure_structure_not_pixels():
    """real="moments": the per-tile NIQE-style moments are those of the MSCN map (checked
    against a direct computation), a blur is far from the sharp texture while the same texture
    moved inside its tile is near, and in ctsr_loss the gradient of the realness term reaches
    the null component only."""
    tex = 0.5 + 0.4 * Dl.p_null(rand(1, 3, 64, 64, seed=5))
    m = Dl.mscn(tex)
    f = Dl.nss_moments(tex, tile=32)
    assert f.shape == (1, 14, 2, 2)
    assert torch.allclose(f[0, 0, 0, 0], (m[0, 0, :32, :32] ** 2).mean(), rtol=1e-5)
    assert torch.allclose(f[0, 1, 1, 1], m[0, 0, 32:, 32:].abs().mean(), rtol=1e-5)
    # horizontal neighbour products, first tile: mean and the left/right second moments
    p = (m[0, 0, :-1, 1:-1] * m[0, 0, :-1, 2:])[:32, :32]
    assert torch.allclose(f[0, 2, 0, 0], p.mean(), rtol=1e-4)
    n = p.numel()
    for k, side in ((3, p < 0), (4, p >= 0)):
        assert torch.allclose(f[0, k, 0, 0], (p[side] ** 2).sum() / n / (side.sum() / n + 1e-3),
                              rtol=1e-4)
    moved = torch.roll(tex.reshape(1, 3, 2, 32, 2, 32), shifts=(8, 8), dims=(3, 5)).reshape(1, 3, 64, 64)
    blur = F.avg_pool2d(F.pad(tex, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert float(Dl.nss_moment_loss(tex, [tex], [1.0])) == 0.0
    d_moved = float(Dl.nss_moment_loss(moved, [tex], [1.0]))
    d_blur = float(Dl.nss_moment_loss(blur, [tex], [1.0]))
    assert d_blur > 3 * d_moved
    y = rand(2, 3, 64, 64, seed=6)
    s = rand(2, 3, 64, 64, seed=7).requires_grad_(True)
    w = dict(real="moments", ft=0.0, rp=0.0, block=4)
    dirs = Dl.random_dirs(8, 16, torch.Generator().manual_seed(1))
    _, terms = Dl.ctsr_loss(s, torch.ones(2), y, [y], [rand(2, 3, 64, 64, seed=8)], [1.0], dirs, w=w)
    assert terms["swd"] > 0
    s.grad = None
    sr = Dl.p_range(s, 4)
    Dl.nss_moment_loss(sr.detach() + (s - sr), [y], [1.0]).sum().backward()
    assert Dl.p_range(s.grad, 4).abs().max() < 1e-6 < s.grad.abs().max()


def test_pretraining_losses():
    """l1 and l2 (fidelity pre-training): zero at the truth, the mean absolute and the mean
    squared error otherwise, t and the teachers unused."""
    y, s = rand(2, 3, 16, 16, seed=10), rand(2, 3, 16, 16, seed=11)
    for name, ref in (("l1", (s - y).abs().mean()), ("l2", ((s - y) ** 2).mean())):
        f = Dl.LOSSES[name]
        assert float(f(y, torch.zeros(2), y, [], [], [], None)[0]) == 0.0
        assert torch.allclose(f(s, torch.ones(2), y, [], [], [], None)[0], ref)
    assert set(Dl.TRUTH_ONLY) <= set(Dl.PRETRAIN) <= set(Dl.LOSSES)


def test_l1f_adds_the_closest_fidelity_teacher():
    """l1f: |S - y| + w_ft |S - f*| with f* the fidelity teacher closest to the truth per
    example (here the second teacher for example 0, the first for example 1)."""
    y, s = rand(2, 3, 16, 16, seed=12), rand(2, 3, 16, 16, seed=13)
    near, far = y + 0.01, y + 0.3
    fa, fb = torch.stack([far[0], near[1]]), torch.stack([near[0], far[1]])
    total, terms = Dl.LOSSES["l1f"](s, torch.zeros(2), y, [fa, fb], [], [], None, w=dict(ft=0.5))
    ref = (s - y).abs().mean() + 0.5 * (s - near).abs().mean()
    assert torch.allclose(total, ref)
    assert terms["ft"] == pytest.approx(float((s - near).abs().mean()), rel=1e-5)
    assert float(Dl.LOSSES["l1f"](y, torch.zeros(2), y, [y, far], [], [], None)[0]) == 0.0


def test_shift_consistency_compares_the_moved_pixels():
    """sb moved by d against sa: zero when sb really is sa moved by d, whatever the borders
    hold; positive for another shift; per example."""
    g = torch.Generator().manual_seed(3)
    scene = torch.rand(2, 3, 40, 40, generator=g)
    sa = scene[:, :, :32, :32]
    sb = torch.stack([scene[0, :, 1:33, 0:32], scene[1, :, 1:33, 1:33]])  # d = (1, 0), (1, 1)
    sb = sb.clone()
    sb[:, :, :, -2:] = 5.0  # border garbage, inside the margin
    l = Dl.shift_consistency(sa, sb, [(1, 0), (1, 1)], margin=3)
    assert l.shape == (2,) and float(l.abs().max()) == 0.0
    wrong = Dl.shift_consistency(sa, sb, [(0, 1), (1, 0)], margin=3)
    assert float(wrong.min()) > 0.05
