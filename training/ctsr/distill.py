"""CTSR distillation losses: the geometric decomposition, the realness loss, the targets.

Space. Everything here lives in HR RGB pixel space R^(3 x 2H x 2W) with the Euclidean inner
product. A is the x2 box downsampling (the mean of each 2x2 block) and A+ = 4 A^T its
pseudo-inverse (each LR value copied into its 2x2 block; A A+ = I). The two projectors

    P_r = A+ A          (range of A+, "low band": each 2x2 block replaced by its mean)
    P_n = I - A+ A      (null space of A, "detail": what the low-resolution image cannot see)

are symmetric and idempotent with P_r P_n = 0 and P_r + P_n = I, so every image splits into two
orthogonal components z = P_r z + P_n z, and a loss on one component has a gradient that lies
in that component's subspace only. For a 2x2 box average this is one level of the Haar
transform: P_r keeps the LL band, P_n the LH/HL/HH bands.

Targets. y is the truth, f_k the fidelity teachers, r_k the realness teachers, S the student's
output at timestep t (per example). With f* the fidelity teacher closest to y in L1 (chosen per
example: several fidelity teachers are combined by picking, per patch, the one that is most
faithful), and r_k combined as a weighted sum of per-teacher realness losses:

    L_range = |P_r S - P_r y|_1 + w_ft |P_r S - P_r f*|_1                      (every t)
    L_fid   = (1 - t) (|P_n S - P_n y|_1 + w_ft |P_n S - P_n f*|_1)             (detail, t -> 0)
    L_real  = t (sum_k w_k SWD(P_n S, P_n r_k) + w_rp |P_n S - P_n rbar|_1)   (detail, t -> 1)
    L_cons  = |P_r S(t_a) - P_r S(t_b)|_1        (the same crop at two timesteps)

Fidelity terms act on the range component at every t (the stabilising anchor: the low band
is what the input determines, and no timestep may move it), and on the null component with
weight 1 - t; realness terms act only on the null component, with weight t. The consistency
term is the geometric statement of controllability itself: t moves the output only along the
null space, so the range components of one input at two timesteps must agree; because both are
evaluated in the same step, it constrains the whole path between the ends, not the endpoints.

SWD (sliced Wasserstein distance of local neighbourhoods, Heitz et al. 2021) is the realness
loss that does not collapse to the blurred average: inside each T x T tile it compares the
distribution of the k x k x 3 neighbourhoods (stride 2) of the two detail images, projected on random
unit directions and sorted, so it asks for detail of the same amplitude and structure as the
teacher's without asking for the teacher's pixels (which the input cannot predict: a pixel
loss's best answer to invented detail is its blur, its mean). Tiles keep it local: the detail
goes where the teacher puts detail (foliage), not where it does not (sky).

The naive ablation (`naive_loss`) uses the same terms on whole images, without the
decomposition: a weighted sum of per-teacher losses, (1 - t) times the fidelity terms plus t
times the realness terms.
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


def random_dirs(n_dirs, dim, generator):
    d = torch.randn(n_dirs, dim, generator=generator)
    return d / d.norm(dim=1, keepdim=True)


DEFAULT_WEIGHTS = dict(ft=0.25, rp=0.1, swd=1.0, cons=0.5, swd_k=4, swd_tile=32, swd_dirs=32,
                       hr_real=0.0, block=2)


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
    l_swd = swd_to_teachers(s, refs, ref_w, dirs, w["swd_k"], w["swd_tile"])
    l_rp = l1_per_example(s, rbar)
    total = ((1 - t) * l_fid + t * (w["swd"] * l_swd + w["rp"] * l_rp)).mean()
    terms = dict(fid=l_fid.mean(), swd=l_swd.mean(), rp=l_rp.mean(), total=total)
    return total, {k: float(v) for k, v in terms.items()}


LOSSES = {"ctsr": ctsr_loss, "naive": naive_loss}
