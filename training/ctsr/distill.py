"""CTSR distillation losses: the geometric decomposition, the realness loss, the targets.

Space. Everything here lives in HR RGB pixel space R^(3 x H x W) with the Euclidean inner
product. A_B is the B x B box average (B = `block`: 4 for the shipped models, 2 also
supported) and A_B+ = B^2 A_B^T its pseudo-inverse (each value copied into its block;
A_B A_B+ = I). The two projectors

    P_r = A_B+ A_B      (range: each B x B block replaced by its mean, the "low band")
    P_n = I - A_B+ A_B  (null space of A_B: the detail inside the blocks)

are symmetric and idempotent with P_r P_n = 0 and P_r + P_n = I, so every image splits into two
orthogonal components z = P_r z + P_n z, and a loss on one component has a gradient that lies
in that component's subspace only. For B = 2 this is one level of the Haar transform (LL vs
LH/HL/HH), for B = 4 two levels (the LL of the LL vs everything finer). With B = 4 the range is
the HR at a quarter of its resolution, half the LR's: what a degraded (blurred, noisy) LR still
determines; the null space holds the scales where fidelity and realness disagree.

Targets. y is the truth, f_k the fidelity teachers, r_k the realness teachers, S the student's
output at timestep t (per example). With f* the fidelity teacher closest to y in L1 (chosen per
example: several fidelity teachers are combined by picking, per patch, the one that is most
faithful), and r_k combined as a weighted sum of per-teacher realness losses:

    L_range = |P_r S - P_r y|_1 + w_ft |P_r S - P_r f*|_1                      (every t)
    L_fid   = (1 - t) (|P_n S - P_n y|_1 + w_ft |P_n S - P_n f*|_1)             (detail, t -> 0)
    L_real  = t (sum_k w_k D(S_n, r_k) / sum_k w_k + w_rp |P_n S - P_n rbar|_1) (detail, t -> 1)
    L_cons  = |P_r S(t_a) - P_r S(t_b)|_1        (the same crop at two timesteps)

with S_n = sg(P_r S) + P_n S (the range held fixed, so the realness gradient reaches the null
component only) and D the realness distance below (`real="nss"`; `real="swd"` compares the
detail images' pixel neighbourhoods instead: measured here, the student's detail already has
the teachers' amplitude, so that distance asked for nothing and the knob stayed dead).

Fidelity terms act on the range component at every t (the stabilising anchor: the low band
is what the input determines, and no timestep may move it), and on the null component with
weight 1 - t; realness terms act only on the null component, with weight t. The consistency
term is the geometric statement of controllability itself: t moves the output only along the
null space, so the range components of one input at two timesteps must agree; because both are
evaluated in the same step, it constrains the whole path between the ends, not the endpoints.

Realness distance D (`nss_swd`): a sliced Wasserstein distance (Heitz et al. 2021) between the
distributions of 4x4 neighbourhoods of the MSCN maps (mean-subtracted, contrast-normalised luma:
the natural-scene statistics that NIQE and BRISQUE are built on) of S_n and of a reference,
inside each 32x32 tile, at two scales (full and 2x2-averaged). The neighbourhoods are projected
on random unit directions and sorted, so the loss asks for detail whose local structure is
distributed like the teacher's (sharp edges, clean flat areas, natural texture) without asking
for the teacher's pixels (which the input cannot predict: a pixel loss's best answer to invented
detail is its blur, its mean); contrast normalisation makes it about structure, not amplitude;
tiles keep it local (detail where the teacher puts detail). References: the realness teachers
(weights 1 and 0.5) and, with weight `hr_real`, the truth itself (real photographs, as a patch
discriminator would be trained on). Measured on cached patches, D to x4plus orders the methods
as NIQE does: truth 0.19, x4fast 0.24, bicubic 0.29, waifu2x 0.31.

Realness distance `real="moments"` (`nss_moment_loss`): per 32x32 tile and at two scales, the
L1 distance between the moments NIQE and BRISQUE fit their models to: of the MSCN map m, E m^2
and E|m|; of its four neighbour products p (H, V, D1, D2), E p and the second moments of the
negative and the positive side. Measured on cached patches (harsh / mild), the distance to the
truth orders the methods as set NIQE does: x4plus 0.052 / 0.034 (NIQE 2.50 / 2.58), x4fast 0.071
/ 0.049 (3.63 / 3.76), bicubic and waifu2x 0.093-0.094 / 0.059-0.060 (5.3-5.5 / 4.7-5.1); the
shipped nss-trained student moved neither it nor nss_swd between t = 0 and t = 1.

Temporal stability (`shift_consistency`, train.py --w-eq): video moves by fractions of a pixel
between frames, and a student whose invented detail depends on the sampling phase of its input
shimmers (measured: the moments-trained ctsr-x2 at t = 1 flickers at 10.0 levels on the pan
clip of training/ctsr_eval.py, x4plus at 5.1, bicubic at 4.0). With H a clean HR crop, T_d the
shift by d HR pixels (d in {(0, 1), (1, 0), (1, 1)}: odd, so half an LR pixel), D the
antialiased bicubic x0.5 and n_a, n_b independent noise of --eq-noise levels,

    L_eq = |M (S(D H + n_a, t) - T_d^-1 S(D T_d H + n_b, t))|_1

on the output pixels M at least --eq-margin from the borders, at a timestep t drawn as for the
main batch: the output must move with its input (shift equivariance across sub-pixel phases)
and not with the noise. It acts on the whole output at every t; it asks for detail that is a
function of the scene, not of where the pixel grid falls on it.

The naive ablation (`naive_loss`) uses the same terms on whole images, without the
decomposition or the consistency term: (1 - t) times the fidelity terms plus t times the
realness terms.
"""
import torch
import torch.nn.functional as F


def p_range(z, block=2):
    """P_r z = A+ A z: every block x block cell replaced by its mean. z: [N, C, H, W]."""
    return F.interpolate(F.avg_pool2d(z, block), scale_factor=block, mode="nearest")


def p_null(z, block=2):
    """P_n z = z - A+ A z: the component in the null space of the block x block box average."""
    return z - p_range(z, block)


def l1_per_example(a, b):
    return (a - b).abs().flatten(1).mean(1)


def _tiles(z, tile):
    n, c, h, w = z.shape
    th, tw = min(tile, h), min(tile, w)
    z = z[:, :, :h // th * th, :w // tw * tw]
    z = z.reshape(n, c, h // th, th, w // tw, tw).permute(0, 2, 4, 1, 3, 5)
    return z.reshape(n, (h // th) * (w // tw), c, th, tw)


def swd_proj(z, dirs, k=4, tile=32):
    """The sorted projections of z's k x k neighbourhoods (stride 2, so aligned with the 2x2
    blocks of the decomposition) inside each tile x tile tile: [N, tiles, L, D]."""
    n = z.shape[0]
    t = _tiles(z, tile)
    m, c, th, tw = t.shape[1:]
    f = F.unfold(t.reshape(n * m, c, th, tw), k, stride=2)  # [n*m, c*k*k, L]
    p = f.transpose(1, 2).reshape(-1, f.shape[1]) @ dirs.t()  # one GEMM
    return p.reshape(n, m, f.shape[2], dirs.shape[0]).sort(dim=2).values


def swd(a, b, dirs, k=4, tile=32):
    """Sliced Wasserstein-1 distance between the neighbourhood distributions of a and b inside
    each tile, per example. a, b: [N, C, H, W] (or b: swd_proj output); dirs: [D, C*k*k] unit
    rows. Returns [N]."""
    pa = swd_proj(a, dirs, k, tile)
    pb = b if b.dim() == 4 and b.shape == pa.shape else swd_proj(b, dirs, k, tile)
    return (pa - pb).abs().flatten(1).mean(1)


def swd_to_teachers(s, teachers, weights, dirs, k=4, tile=32):
    """Weighted mean over teachers of swd(s, teacher); s is projected once."""
    ps = swd_proj(s, dirs, k, tile)
    tot = 0
    for wk, r in zip(weights, teachers):
        with torch.no_grad():
            pr = swd_proj(r, dirs, k, tile)
        tot = tot + wk * (ps - pr).abs().flatten(1).mean(1)
    return tot / sum(weights)


def _gauss7():
    x = torch.arange(7, dtype=torch.float32) - 3
    g = torch.exp(-x ** 2 / (2 * (7 / 6) ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None])[None, None]


GAUSS7 = _gauss7()


def mscn(z):
    """Mean-subtracted contrast-normalised luma (natural-scene statistics, as NIQE and BRISQUE
    use them): (Y - mu) / (sigma + 1) with a 7x7 Gaussian window (sigma 7/6), Y in 0..255.
    z: [N, 3, H, W] RGB in [0, 1] -> [N, 1, H, W]."""
    y = (0.299 * z[:, 0:1] + 0.587 * z[:, 1:2] + 0.114 * z[:, 2:3]) * 255.0
    pad = lambda x: F.pad(x, (3, 3, 3, 3), mode="replicate")  # noqa: E731
    mu = F.conv2d(pad(y), GAUSS7)
    var = F.conv2d(pad(y * y), GAUSS7) - mu * mu
    return (y - mu) / (var.clamp_min(0).add(1e-6).sqrt() + 1.0)


def nss_swd(s, refs, weights, dirs, k=4, tile=32, scales=2):
    """Realness loss: SWD between the distributions of k x k neighbourhoods of the MSCN maps
    of s and of each reference, per tile, at `scales` scales (full, then 2x2-averaged), the
    weighted mean over the references. Contrast normalisation makes it about the structure of
    detail (sharp edges, clean flat areas, natural texture) rather than its amplitude."""
    tot = 0
    for sc in range(scales):
        t = max(tile >> sc, 8)
        tot = tot + swd_to_teachers(mscn(s), [mscn(r) for r in refs], weights, dirs, k, t)
        if sc + 1 < scales:
            s, refs = F.avg_pool2d(s, 2), [F.avg_pool2d(r, 2) for r in refs]
    return tot / scales


# the four neighbour offsets of NIQE's and BRISQUE's pairwise products (H, V, D1, D2)
NSS_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _pair_product(m, dy, dx):
    """m[y, x] * m[y + dy, x + dx] on the overlap, cropped to [H - 1, W - 2] for every shift."""
    h, w = m.shape[-2:]
    a = m[..., 0:h - 1, 1:w - 1]
    b = m[..., dy:dy + h - 1, 1 + dx:1 + dx + w - 2]
    return a * b


def nss_moments(z, tile=32):
    """Per-tile natural-scene statistics of an image, the quantities NIQE and BRISQUE fit their
    models to, as moments (differentiable, no fitting): of the MSCN map m, E m^2 and E|m| (the
    variance and, through E|m|^2 / E m^2, the shape of its generalised Gaussian); of each of the
    four neighbour products p, E p and the left and right second moments E[p^2 | p < 0] and
    E[p^2 | p > 0] (the asymmetric generalised Gaussian's spreads). z: [N, 3, H, W] RGB in
    [0, 1] -> [N, 14, H/tile, W/tile]."""
    m = mscn(z)
    pool = lambda x: F.avg_pool2d(x, tile, ceil_mode=True)  # noqa: E731
    feats = [pool(m * m), pool(m.abs())]
    for dy, dx in NSS_SHIFTS:
        p = _pair_product(m, dy, dx)
        neg = (p < 0).to(p.dtype)
        q = p * p
        feats += [pool(p), pool(q * neg) / (pool(neg) + 1e-3),
                  pool(q * (1 - neg)) / (pool(1 - neg) + 1e-3)]
    h, w = feats[-1].shape[-2:]
    return torch.cat([f[..., :h, :w] for f in feats], dim=1)


def nss_moment_loss(s, refs, weights, tile=32, scales=2):
    """Realness loss `real="moments"`: per tile, the L1 distance between the natural-scene
    moments (nss_moments) of s and of each reference, at `scales` scales (full, then 2x2
    averaged, as NIQE looks at two scales), the weighted mean over the references; per
    example [N]. Unlike nss_swd it compares the statistics NIQE scores directly (second moments
    of the MSCN map and of its neighbour products), not random projections of neighbourhoods."""
    tot = 0
    for sc in range(scales):
        t = max(tile >> sc, 8)
        fs = nss_moments(s, t)
        d = sum(wk * (fs - nss_moments(r, t)).abs().flatten(1).mean(1)
                for wk, r in zip(weights, refs))
        tot = tot + d / sum(weights)
        if sc + 1 < scales:
            s, refs = F.avg_pool2d(s, 2), [F.avg_pool2d(r, 2) for r in refs]
    return tot / scales


def random_dirs(n_dirs, dim, generator):
    d = torch.randn(n_dirs, dim, generator=generator)
    return d / d.norm(dim=1, keepdim=True)


DEFAULT_WEIGHTS = dict(ft=0.25, rp=0.1, swd=1.0, cons=0.5, swd_k=4, swd_tile=32, swd_dirs=32,
                       hr_real=0.0, block=2, real="swd")


def pick_fidelity(y, fids):
    """Per example, the fidelity teacher output closest to the truth in L1. fids: [K, N, ...]."""
    err = torch.stack([l1_per_example(f, y) for f in fids])  # [K, N]
    best = err.argmin(0)
    return torch.stack([fids[int(best[i])][i] for i in range(y.shape[0])])


def ctsr_loss(s, t, y, fids, reals, real_w, dirs, pair=None, w=None):
    """The CTSR loss (module docstring). s: student output [N,3,H,W]; t: [N]; y: truth;
    fids / reals: lists of teacher outputs [N,3,H,W]; real_w: weights of the realness
    teachers; pair: (idx_a, idx_b) index tensors of examples that share an input (consistency).
    Returns (total, dict of per-term means)."""
    w = dict(DEFAULT_WEIGHTS, **(w or {}))
    f = pick_fidelity(y, fids)
    rbar = sum(wk * r for wk, r in zip(real_w, reals)) / sum(real_w)
    k = w["block"]
    sr, yr, fr = p_range(s, k), p_range(y, k), p_range(f, k)
    sn, yn, fn = s - sr, y - yr, f - fr
    l_range = l1_per_example(sr, yr) + w["ft"] * l1_per_example(sr, fr)
    l_fid = l1_per_example(sn, yn) + w["ft"] * l1_per_example(sn, fn)
    if w["real"] in ("nss", "moments"):
        # on the whole image, with the range component held fixed: the gradient reaches the
        # null component only
        refs, ref_w = list(reals), list(real_w)
        if w["hr_real"] > 0:
            refs, ref_w = refs + [y], ref_w + [w["hr_real"]]
        if w["real"] == "nss":
            l_swd = nss_swd(sr.detach() + sn, refs, ref_w, dirs, w["swd_k"], w["swd_tile"])
        else:
            l_swd = nss_moment_loss(sr.detach() + sn, refs, ref_w, w["swd_tile"])
    else:
        refs, ref_w = [p_null(r, k) for r in reals], list(real_w)
        if w["hr_real"] > 0:  # the truth's detail as a realness reference too (real photographs)
            refs, ref_w = refs + [yn], ref_w + [w["hr_real"]]
        l_swd = swd_to_teachers(sn, refs, ref_w, dirs, w["swd_k"], w["swd_tile"])
    l_rp = l1_per_example(sn, p_null(rbar, k))
    l_real = w["swd"] * l_swd + w["rp"] * l_rp
    total = (l_range + (1 - t) * l_fid + t * l_real).mean()
    terms = dict(range=l_range.mean(), fid=l_fid.mean(), swd=l_swd.mean(), rp=l_rp.mean())
    if pair is not None:
        ia, ib = pair
        l_cons = (sr[ia] - sr[ib]).abs().mean()
        total = total + w["cons"] * l_cons
        terms["cons"] = l_cons
    terms["total"] = total
    return total, {k: float(v) for k, v in terms.items()}


def naive_loss(s, t, y, fids, reals, real_w, dirs, pair=None, w=None):
    """Ablation: the same teachers and terms on whole images, no decomposition and no
    consistency term: (1 - t) (|S - y| + w_ft |S - f*|) + t (SWD(S, r) + w_rp |S - rbar|)."""
    w = dict(DEFAULT_WEIGHTS, **(w or {}))
    f = pick_fidelity(y, fids)
    rbar = sum(wk * r for wk, r in zip(real_w, reals)) / sum(real_w)
    l_fid = l1_per_example(s, y) + w["ft"] * l1_per_example(s, f)
    refs, ref_w = list(reals), list(real_w)
    if w["hr_real"] > 0:
        refs, ref_w = refs + [y], ref_w + [w["hr_real"]]
    if w["real"] == "nss":
        l_swd = nss_swd(s, refs, ref_w, dirs, w["swd_k"], w["swd_tile"])
    elif w["real"] == "moments":
        l_swd = nss_moment_loss(s, refs, ref_w, w["swd_tile"])
    else:
        l_swd = swd_to_teachers(s, refs, ref_w, dirs, w["swd_k"], w["swd_tile"])
    l_rp = l1_per_example(s, rbar)
    total = ((1 - t) * l_fid + t * (w["swd"] * l_swd + w["rp"] * l_rp)).mean()
    terms = dict(fid=l_fid.mean(), swd=l_swd.mean(), rp=l_rp.mean(), total=total)
    return total, {k: float(v) for k, v in terms.items()}


def l1_loss(s, t, y, fids, reals, real_w, dirs, pair=None, w=None):
    """Fidelity pre-training (and the plain L1 student of the issue's measurements): |S - y|_1
    at every t. The same signature as ctsr_loss; t, the teachers and the pairs are unused."""
    l_fid = l1_per_example(s, y)
    total = l_fid.mean()
    return total, dict(fid=float(total), total=float(total))


def l2_loss(s, t, y, fids, reals, real_w, dirs, pair=None, w=None):
    """Fidelity pre-training with the squared error (MSE, what PSNR measures: its optimum is the
    conditional mean, L1's the median). Same signature as l1_loss."""
    l_fid = ((s - y) ** 2).flatten(1).mean(1)
    total = l_fid.mean()
    return total, dict(fid=float(total), total=float(total))


def shift_consistency(sa, sb, shifts, margin=8):
    """L_eq of the module docstring, per example. sa: the outputs for H, sb: for T_d H (the
    crop moved by d = (dy, dx) >= 0 HR pixels, so sb[y, x] should equal sa[y + dy, x + dx]);
    shifts: one (dy, dx) per example. Compared on the pixels at least `margin` from the
    borders of both."""
    h, w = sa.shape[-2:]
    out = []
    for i, (dy, dx) in enumerate(shifts):
        a = sa[i, :, margin + dy:h - margin, margin + dx:w - margin]
        b = sb[i, :, margin:h - margin - dy, margin:w - margin - dx]
        out.append((a - b).abs().mean())
    return torch.stack(out)


def l1f_loss(s, t, y, fids, reals, real_w, dirs, pair=None, w=None):
    """Fidelity pre-training distilled from the fidelity teachers as well as the truth:
    |S - y|_1 + w_ft |S - f*|_1 (f*: pick_fidelity, the teacher closest to the truth per
    example). The teacher's output is a function of the input, which a small student can
    follow where the truth's unpredictable detail only pulls it towards the median."""
    w = dict(DEFAULT_WEIGHTS, **(w or {}))
    l_y, l_f = l1_per_example(s, y), l1_per_example(s, pick_fidelity(y, fids))
    total = (l_y + w["ft"] * l_f).mean()
    return total, dict(fid=float(l_y.mean()), ft=float(l_f.mean()), total=float(total))


LOSSES = {"ctsr": ctsr_loss, "naive": naive_loss, "l1": l1_loss, "l2": l2_loss,
          "l1f": l1f_loss}
# the fidelity pre-training losses: each crop once, at t = 0
PRETRAIN = ("l1", "l2", "l1f")
# those of them that need no teacher output
TRUTH_ONLY = ("l1", "l2")
