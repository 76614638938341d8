"""CTSR distillation of the student (training/ctsr/distill.py has the method and its equations).

    cd training && /usr/bin/python3 train.py --config default --workdir checkpoints/ctsr-x2 \\
        --cache cache/teachers-mix-s0 --cache cache/teachers-mix-s1 --steps 6000 --minutes 60
    # several processes or GPUs (DDP; gloo on CPUs, NCCL on GPUs); ctsr.torchrun is torchrun
    # with a fix for Debian 12's torch 1.13 on Python 3.11 (plain torchrun elsewhere):
    /usr/bin/python3 -m ctsr.torchrun --standalone --nproc_per_node 2 train.py ...same arguments...

The same command resumes from WORKDIR/ckpt.pt exactly (model, EMA, optimiser, step; every
random draw of step k comes from a generator seeded by (seed, k), so a resumed run takes the
same batches, timesteps and directions as an uninterrupted one). --steps fixes the length of
the learning-rate schedule; --minutes bounds this invocation (checkpoint, then exit 0).

Per step: B random --crop x --crop crops of cache patches (dihedral augmentation), each at two timesteps t_a, t_b
(t = 0 or 1 with probability p_end each, else uniform), so the batch holds 2B examples and the
consistency term compares the two. AdamW (the timestep MLP and the FiLM layers at
--cond-lr-mult x the learning rate, FiLM initialised non-zero), warm-up then cosine decay,
gradient clipping, EMA of the weights (the EMA is what is validated and exported).

Outputs in WORKDIR: ckpt.pt (every --ckpt-minutes and at the end), log.csv (training losses),
val.csv (PSNR / SSIM / set NIQE on the validation sets at t in {0, 0.5, 1} every --val-every
steps, EMA weights), args.json.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cache as cache_mod  # noqa: E402
import data  # noqa: E402
from ctsr import distill  # noqa: E402
from ctsr.export import export  # noqa: E402
from ctsr.student import CONFIGS, Student  # noqa: E402

FIDELITY = ("waifu2x-noise1", "waifu2x-noise3")
REALNESS = ("realesrgan-x4plus", "realesrgan-x4fast")
REAL_WEIGHTS = (1.0, 0.5)
VAL_TS = (0.0, 0.5, 1.0)


# ----------------------------------------------------------------------------- data

def list_shards(cache_dirs):
    """[(cache dir, shard file)] of every finished shard, interleaved across the caches."""
    per = []
    for d in cache_dirs:
        idx = cache_mod.read_index(d) or {"shards": {}}
        per.append([(d, v["file"]) for _, v in sorted(idx["shards"].items())])
    out = []
    for i in range(max(map(len, per), default=0)):
        out += [p[i] for p in per if i < len(p)]
    return out


def load_data(shards, fidelity=FIDELITY, realness=REALNESS):
    """The patches of shards [(cache dir, file)] as uint8 NCHW tensors: lr, hr, fid [K, ...],
    real [K, ...]; mild (bool per patch)."""
    if not shards:
        raise SystemExit("no finished teacher-cache shard to train on")
    parts = [np.load(os.path.join(d, f)) for d, f in shards]
    missing = [n for n in fidelity + realness if "x2_" + n not in parts[0].files]
    if missing:
        raise SystemExit(f"cache lacks teachers {missing}")

    def cat(k):
        return torch.from_numpy(np.concatenate([p[k] for p in parts])).permute(0, 3, 1, 2).contiguous()

    hr = cat("hr")

    def stack(names):  # [K, N, 3, H, W]; K = 0 for the l1 loss, which needs no teacher
        return (torch.stack([cat("x2_" + n) for n in names]) if names
                else hr.new_empty((0,) + tuple(hr.shape)))

    d = dict(lr=cat("lr"), hr=hr, fid=stack(fidelity), real=stack(realness),
             mild=np.concatenate([p["mild"] if "mild" in p.files else np.zeros(len(p["lr"]), bool)
                                  for p in parts]))
    d["n"] = len(d["lr"])
    return d


def dihedral(x, k):
    """One of the 8 flips/rotations of [..., H, W]."""
    if k & 4:
        x = x.flip(-1)
    return torch.rot90(x, k & 3, dims=(-2, -1))


def step_generator(seed, step):
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def sample_t(n, g, p_end):
    u = torch.rand(n, generator=g)
    c = torch.rand(n, generator=g)
    return torch.where(c < p_end, torch.zeros(n), torch.where(c < 2 * p_end, torch.ones(n), u))


def make_batch(D, step, a, rank=0, world=1):
    """The step's global batch is drawn identically on every rank; this rank takes its slice."""
    g = step_generator(a.seed, step)
    idx = torch.randint(D["n"], (a.batch,), generator=g)
    if a.mild_share > 0:  # each crop from a mild patch with probability mild_share
        mild = torch.from_numpy(np.flatnonzero(D["mild"]))
        harsh = torch.from_numpy(np.flatnonzero(~D["mild"]))
        if not len(mild) or not len(harsh):
            raise SystemExit("--mild-share needs both mild and harsh patches in the cache")
        pick = torch.rand(a.batch, generator=g) < a.mild_share
        im = mild[torch.randint(len(mild), (a.batch,), generator=g)]
        ih = harsh[torch.randint(len(harsh), (a.batch,), generator=g)]
        idx = torch.where(pick, im, ih)
    aug = torch.randint(8, (a.batch,), generator=g)
    p = D["lr"].shape[-1]
    c = min(a.crop or p, p)
    off = torch.randint(p - c + 1, (a.batch, 2), generator=g)
    ta = sample_t(a.batch, g, a.p_end)
    tb = 1 - ta if a.t_pair == "antithetic" else sample_t(a.batch, g, a.p_end)
    dim = (3 if a.real == "swd" else 1) * a.swd_k * a.swd_k
    dirs = distill.random_dirs(a.swd_dirs, dim, g)
    mine = list(range(rank, a.batch, world))
    eq = make_eq(D, g, a, rank, world) if a.w_eq > 0 and a.loss not in distill.PRETRAIN else None

    def take(x):  # x: uint8 [..., N, 3, H, W] -> float [..., b, 3, h, w] of this rank's crops
        f = x.shape[-1] // p  # 1 for LR, 2 for HR and teachers
        out = []
        for i in mine:
            y0, x0 = int(off[i, 0]) * f, int(off[i, 1]) * f
            out.append(dihedral(x[..., int(idx[i]), :, y0:y0 + c * f, x0:x0 + c * f], int(aug[i])))
        return torch.stack(out, dim=x.dim() - 4).float() / 255.0

    lr, hr, fid, real = take(D["lr"]), take(D["hr"]), take(D["fid"]), take(D["real"])
    b = len(mine)
    if a.loss in distill.PRETRAIN:  # fidelity pre-training: each crop once, at t = 0
        return dict(lr=lr, hr=hr, fid=list(fid), real=list(real), t=torch.zeros(b), pair=None,
                    dirs=dirs, idx=idx[mine])
    two = lambda x: torch.cat([x, x])  # noqa: E731  the same crops at t_a, then at t_b
    t = torch.cat([ta[mine], tb[mine]])
    pair = (torch.arange(b), torch.arange(b, 2 * b))
    return dict(lr=two(lr), hr=two(hr), fid=[two(f) for f in fid], real=[two(r) for r in real],
                t=t, pair=pair, dirs=dirs, idx=idx[mine], eq=eq)


EQ_SHIFTS = ((0, 1), (1, 0), (1, 1))


def make_eq(D, g, a, rank=0, world=1):
    """The temporal-stability crops (distill.shift_consistency): --eq-batch clean HR crops of
    2 crop + 1 px, each seen at offset 0 and moved by an odd shift, both halved (antialiased
    bicubic, 8-bit), with independent --eq-noise; drawn after every other draw of the step, so
    runs without the term take exactly the batches they took before it existed."""
    from teachers import downscale_half
    n = a.eq_batch
    idx = torch.randint(D["n"], (n,), generator=g)
    aug = torch.randint(8, (n,), generator=g)
    c = min(a.crop or D["lr"].shape[-1], D["lr"].shape[-1])  # the main batch's crop size
    ph = D["hr"].shape[-1]
    if 2 * c + 1 > ph:
        raise SystemExit(f"--w-eq needs --crop below the cache's LR patch size "
                         f"({D['lr'].shape[-1]} px)")
    off = torch.randint(ph - (2 * c + 1) + 1, (n, 2), generator=g)
    which = torch.randint(len(EQ_SHIFTS), (n,), generator=g)
    t = sample_t(n, g, a.p_end)
    noise = torch.randn(2, n, 3, c, c, generator=g) * (a.eq_noise / 255.0)
    mine = list(range(rank, n, world))
    ha, hb, shifts = [], [], []
    for i in mine:
        y0, x0 = int(off[i, 0]), int(off[i, 1])
        crop = dihedral(D["hr"][int(idx[i]), :, y0:y0 + 2 * c + 1, x0:x0 + 2 * c + 1],
                        int(aug[i])).float() / 255.0
        dy, dx = EQ_SHIFTS[int(which[i])]
        ha.append(crop[:, :2 * c, :2 * c])
        hb.append(crop[:, dy:dy + 2 * c, dx:dx + 2 * c])
        shifts.append((dy, dx))

    def lr(hr, nz):
        x = (downscale_half(torch.stack(hr)) + nz).clamp(0, 1)
        return torch.round(x * 255.0) / 255.0

    return dict(lr=torch.cat([lr(ha, noise[0, mine]), lr(hb, noise[1, mine])]),
                t=torch.cat([t[mine], t[mine]]), shifts=shifts)


# ----------------------------------------------------------------------------- model, schedule

def build_model(cfg, film_init, seed, temb_gain=1.0):
    """The student with a conditioning path that can learn within a CPU budget: FiLM weights
    N(0, film_init) instead of zero, and the timestep MLP's weights scaled by temb_gain (as
    initialised, its outputs are ~0.03 and nearly the same for every t)."""
    torch.manual_seed(seed)
    m = Student(cfg)
    if film_init > 0:
        for blk in m.blocks:
            torch.nn.init.normal_(blk.film.weight, std=film_init)
    with torch.no_grad():
        m.temb.fc1.weight.mul_(temb_gain)
        m.temb.fc2.weight.mul_(temb_gain)
    return m


def param_groups(model, wd, cond_mult):
    cond, rest = [], []
    for n, p in model.named_parameters():
        (cond if n.startswith("temb.") or ".film." in n else rest).append(p)
    return [dict(params=rest, weight_decay=wd, lr_mult=1.0),
            dict(params=cond, weight_decay=0.0, lr_mult=cond_mult)]


def lr_at(step, a):
    warm = min(1.0, (step + 1) / max(1, a.warmup))
    prog = min(1.0, step / max(1, a.steps))
    return a.lr * warm * (a.lr_min + (1 - a.lr_min) * 0.5 * (1 + math.cos(math.pi * prog)))


@torch.no_grad()
def ema_update(ema, model, step, decay):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(d).add_(p.detach(), alpha=1 - d)


# ----------------------------------------------------------------------------- validation

def load_val(presets, max_images=0):
    man = data.load_manifest()
    out = {}
    for pr in presets:
        v = data.validation_set(man, preset=pr)
        if max_images:
            v = v[:max_images]
        out[pr] = ([torch.from_numpy(lr).permute(2, 0, 1).float()[None] / 255.0 for _, _, lr in v],
                   [hr for _, hr, _ in v])
    return out


def niqe_set(outs):
    """baseline.niqe_pooled, NaN when the pooled patches cannot be fitted (a few flat
    outputs early in training give a singular covariance)."""
    import baseline
    try:
        return baseline.niqe_pooled(outs)
    except np.linalg.LinAlgError:
        return float("nan")


def to_u8(y):
    """[1, 3, H, W] in [0, 1] -> uint8 HxWx3, rounded as the engine's output shader does."""
    return (y[0].clamp(0, 1) * 255.0 + 0.5).floor().byte().permute(1, 2, 0).numpy()


@torch.no_grad()
def evaluate(model, val, ts=VAL_TS, device="cpu"):
    """Rows {set, t, knob, psnr, ssim, niqe_set} of the model on the validation sets; knob is
    the mean absolute difference (8-bit levels) from the output at the first t."""
    import metrics
    model.eval()
    rows = []
    for pr, (lrs, hrs) in val.items():
        first = None
        for t in ts:
            outs = [to_u8(model(x.to(device), float(t)).cpu()) for x in lrs]
            first = first or outs
            knob = float(np.mean([np.abs(o.astype(np.float32) - f).mean()
                                  for o, f in zip(outs, first)]))
            rows.append(dict(set=pr, t=t, knob=knob,
                             psnr=float(np.mean([metrics.psnr(o, h) for o, h in zip(outs, hrs)])),
                             ssim=float(np.mean([metrics.ssim(o, h) for o, h in zip(outs, hrs)])),
                             niqe_set=niqe_set(outs)))
    return rows


# ----------------------------------------------------------------------------- checkpoints, logs

def save_ckpt(path, step, model, ema, opt, a, shards):
    tmp = path + ".tmp"
    torch.save(dict(step=step, model=model.state_dict(), ema=ema.state_dict(),
                    opt=opt.state_dict(), args=vars(a), cfg=model.cfg,
                    shards=[list(x) for x in shards]), tmp)
    os.replace(tmp, path)


def truncate_csv(path, step):
    """Drop rows logged after the checkpoint (they will be logged again by the resumed run)."""
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(keep)


def append_csv(path, header, row):
    new = not os.path.exists(path)
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerow(row)


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def do_export(path, ema, a, step, val_rows, shards):
    cache_dirs = sorted({d for d, _ in shards})
    cfgs = [cache_mod.read_index(d)["config"] for d in cache_dirs]
    prov = dict(name=os.path.splitext(os.path.basename(path))[0], method="ctsr-distillation",
                loss=a.loss, commit=git_commit(), steps=step, batch=a.batch,
                manifest_sha256=file_sha256(data.DEFAULT_MANIFEST),
                cache_config_sha256=hashlib.sha256(json.dumps(cfgs, sort_keys=True).encode()).hexdigest(),
                patches=sum(int(np.load(os.path.join(d, f))["lr"].shape[0]) for d, f in shards),
                teachers=dict(fidelity=list(FIDELITY), realness=list(REALNESS),
                              realness_weights=list(REAL_WEIGHTS)),
                validation={f"{r['set']}_t{r['t']:g}": dict(psnr=round(r["psnr"], 3),
                                                           ssim=round(r["ssim"], 4),
                                                           niqe_set=round(r["niqe_set"], 3))
                            for r in val_rows})
    if getattr(a, "init_from", None):  # the run that gave the starting weights (--init)
        prov["init"] = a.init_from
    export(ema, path, "F32", prov)


# ----------------------------------------------------------------------------- main

def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cache", action="append", required=True, help="teacher cache dir (repeat)")
    ap.add_argument("--grow-data", action="store_true",
                    help="at each checkpoint (and on resume) take in the cache's newly finished "
                         "shards (default: the shards the run started with, so that a resume is "
                         "exact; with --grow-data it is exact when no shard was added meanwhile)")
    ap.add_argument("--loss", default="ctsr", choices=sorted(distill.LOSSES),
                    help="ctsr: the method; naive: the ablation; l1, l2: fidelity pre-training (absolute or squared error)")
    ap.add_argument("--init", help="a fresh run starts from this checkpoint's EMA weights "
                    "(for example an l1 pre-training run's ckpt.pt); ignored on resume")
    ap.add_argument("--steps", type=int, default=6000, help="schedule length (total steps)")
    ap.add_argument("--minutes", type=float, default=0, help="stop this run after N minutes")
    ap.add_argument("--stop-at", type=int, default=0, help="stop this run at step N (tests)")
    ap.add_argument("--mild-share", type=float, default=0.0,
                    help="probability that a crop comes from a mild patch (0: as in the cache)")
    ap.add_argument("--batch", type=int, default=8, help="crops per step (x2 timesteps each)")
    ap.add_argument("--crop", type=int, default=48, help="LR crop taken from a cache patch (0: all)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lr-min", type=float, default=0.05, help="final lr as a fraction of --lr")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--cond-lr-mult", type=float, default=10.0)
    ap.add_argument("--film-init", type=float, default=0.05)
    ap.add_argument("--temb-gain", type=float, default=4.0, help="timestep MLP weight scale at init")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-end", type=float, default=0.2, help="P(t = 0) = P(t = 1)")
    ap.add_argument("--t-pair", default="antithetic", choices=["antithetic", "independent"],
                    help="the second timestep of a crop: 1 - t (the two copies differ only in "
                         "t, by as much as possible on average) or drawn independently")
    ap.add_argument("--real", default="nss", choices=["nss", "moments", "swd"],
                    help="realness loss: nss, SWD of MSCN (natural-scene statistics) "
                         "neighbourhoods at two scales; moments, per-tile NIQE-style moments of "
                         "the MSCN map and its neighbour products at two scales; swd, SWD of the "
                         "detail's pixel neighbourhoods")
    ap.add_argument("--swd-k", type=int, default=4)
    ap.add_argument("--swd-dirs", type=int, default=16)
    ap.add_argument("--w-swd", type=float, default=0.5, help="weight of the realness distance")
    ap.add_argument("--w-rp", type=float, default=0.1)
    ap.add_argument("--w-ft", type=float, default=0.25)
    ap.add_argument("--w-cons", type=float, default=0.1)
    ap.add_argument("--w-eq", type=float, default=0.0,
                    help="weight of the temporal-stability term (distill.shift_consistency)")
    ap.add_argument("--eq-batch", type=int, default=4, help="crop pairs per step for --w-eq")
    ap.add_argument("--eq-noise", type=float, default=2.0,
                    help="std of the independent noise on each crop of a pair (8-bit levels)")
    ap.add_argument("--eq-margin", type=int, default=8, help="output pixels left out at borders")
    ap.add_argument("--w-hr-real", type=float, default=1.0,
                    help="weight of the truth's detail as a realness (SWD) reference")
    ap.add_argument("--block", type=int, default=4,
                    help="the decomposition's box: range = block x block means")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fast-attn", type=int, default=1, help="training path for window attention")
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-sets", default="realesrgan,mild")
    ap.add_argument("--val-images", type=int, default=0, help="first N validation images (0: all)")
    ap.add_argument("--export", help="write the EMA weights here (safetensors) at the end")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) \
        if torch.cuda.is_available() else torch.device("cpu")
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)  # one GPU per process (NCCL)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if a.batch % world:
            raise SystemExit(f"--batch {a.batch} is not a multiple of the {world} processes")
    torch.set_num_threads(a.threads)
    os.makedirs(a.workdir, exist_ok=True)
    ckpt_path = os.path.join(a.workdir, "ckpt.pt")
    lead = rank == 0

    shards = list_shards(a.cache)
    ck = torch.load(ckpt_path, map_location=device) if os.path.exists(ckpt_path) else None
    if ck is not None and not a.grow_data:
        shards = [tuple(x) for x in ck["shards"]]
    # the teacher outputs the loss reads: none (l1, l2), the fidelity ones (l1f) or all
    fidelity = () if a.loss in distill.TRUTH_ONLY else FIDELITY
    realness = () if a.loss in distill.PRETRAIN else REALNESS
    D = load_data(shards, fidelity, realness)
    model = build_model(CONFIGS[a.config], a.film_init, a.seed, a.temb_gain).to(device)
    ema = build_model(CONFIGS[a.config], a.film_init, a.seed, a.temb_gain).to(device)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    if a.fast_attn:
        from ctsr import fastattn
        fastattn.use_fast_attention(model)
    opt = torch.optim.AdamW(param_groups(model, a.wd, a.cond_lr_mult), lr=a.lr)
    step = 0
    # --init: the starting weights of a fresh run, and the provenance of every export after it
    a.init_from = ck["args"].get("init_from") if ck is not None else None
    init = None
    if a.init and (ck is None or a.init_from is None):
        if not os.path.isfile(a.init):
            if ck is None:
                raise SystemExit(f"--init {a.init}: no such checkpoint")
        else:
            init = torch.load(a.init, map_location=device)
            a.init_from = dict(checkpoint=a.init, steps=int(init["step"]),
                               loss=init["args"].get("loss", "ctsr"))
    if ck is None and init is not None:
        if init["cfg"] != model.cfg:
            raise SystemExit(f"--init {a.init}: its config differs from --config {a.config}")
        model.load_state_dict(init["ema"])
        ema.load_state_dict(init["ema"])
    if ck is not None:
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        if lead:
            truncate_csv(os.path.join(a.workdir, "log.csv"), step)
            truncate_csv(os.path.join(a.workdir, "val.csv"), step)
    if lead:
        with open(os.path.join(a.workdir, "args.json"), "w", encoding="utf-8") as f:
            json.dump(dict(vars(a), world=world, patches=D["n"], mild=int(D["mild"].sum())), f,
                      indent=1)
    net = (torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
        if world > 1 else model)
    loss_fn = distill.LOSSES[a.loss]
    w = dict(swd=a.w_swd, rp=a.w_rp, ft=a.w_ft, cons=a.w_cons, swd_k=a.swd_k,
             hr_real=a.w_hr_real, block=a.block, real=a.real)
    val = load_val(a.val_sets.split(","), a.val_images) if lead and a.val_every else None
    bar = None
    if lead and not a.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=a.steps, initial=step, mininterval=10, dynamic_ncols=True)
    t_start = last_ckpt = time.time()
    val_rows = []

    def validate(write=True):
        rows = evaluate(ema, val, device=device)
        for r in rows if write else []:
            append_csv(os.path.join(a.workdir, "val.csv"),
                       ["step", "set", "t", "psnr", "ssim", "niqe_set", "diff_from_t0"],
                       [step, r["set"], r["t"], f"{r['psnr']:.4f}", f"{r['ssim']:.5f}",
                        f"{r['niqe_set']:.4f}", f"{r['knob']:.3f}"])
        msg = " | ".join(f"{r['set'][:4]} t={r['t']:g}: {r['psnr']:.2f} dB NIQE {r['niqe_set']:.2f}"
                         for r in rows)
        (bar.write if bar else print)(f"step {step} val: {msg}")
        return rows

    while step < a.steps:
        B = make_batch(D, step, a, rank, world)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a) * g["lr_mult"]
        model.train()
        eq = B.get("eq")
        if eq is None:
            s = net(B["lr"].to(device), B["t"].to(device))
        else:  # one forward for both, so that DDP sees one graph
            n_main = B["lr"].shape[0]
            s_all = net(torch.cat([B["lr"], eq["lr"]]).to(device),
                        torch.cat([B["t"], eq["t"]]).to(device))
            s, s_eq = s_all[:n_main], s_all[n_main:]
        total, terms = loss_fn(s, B["t"].to(device), B["hr"].to(device),
                               [f.to(device) for f in B["fid"]], [r.to(device) for r in B["real"]],
                               REAL_WEIGHTS, B["dirs"].to(device), B["pair"], w)
        if eq is not None:
            ne = len(eq["shifts"])
            l_eq = distill.shift_consistency(s_eq[:ne], s_eq[ne:], eq["shifts"],
                                             a.eq_margin).mean()
            total = total + a.w_eq * l_eq
            terms = dict(terms, eq=float(l_eq), total=float(total))
        opt.zero_grad(set_to_none=True)
        total.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        ema_update(ema, model, step, a.ema)
        step += 1
        if lead and (step % a.log_every == 0 or step == 1):
            keys = sorted(terms)
            append_csv(os.path.join(a.workdir, "log.csv"), ["step", "lr", "grad_norm", "seconds"] + keys,
                       [step, f"{lr_at(step - 1, a):.6g}", f"{float(gn):.4g}",
                        f"{time.time() - t_start:.1f}"] + [f"{terms[k]:.6g}" for k in keys])
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total']:.4f}", refresh=False)
        if lead and val is not None and step % a.val_every == 0:
            val_rows = validate()
        stop = (a.minutes and time.time() - t_start > a.minutes * 60) or step == a.stop_at
        if world > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.all_reduce(flag)
            stop = flag.item() > 0
        if stop or step == a.steps or time.time() - last_ckpt > a.ckpt_minutes * 60:
            if a.grow_data and not stop and world == 1:
                new = list_shards(a.cache)
                if len(new) > len(shards):
                    shards, D = new, load_data(new, fidelity, realness)
                    (bar.write if bar else print)(f"step {step}: {D['n']} patches now")
            if lead:
                save_ckpt(ckpt_path, step, model, ema, opt, a, shards)
            last_ckpt = time.time()
        if stop:
            break
    if bar:
        bar.close()
    if lead and step == a.steps:
        open(os.path.join(a.workdir, "done"), "w").close()
    if lead and a.export:
        if val is not None and (not val_rows or step % a.val_every):
            # a checkpoint's step already validated by the run is not logged twice
            val_rows = validate(write=bool(step % a.val_every))
        do_export(a.export, ema, a, step, val_rows, shards)
        print(f"exported {a.export} (EMA weights, step {step})")
    if world > 1:
        # every rank must hold the same weights, element by element: DDP averages the
        # gradients, the EMA follows
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()] +
                         [p.detach().reshape(-1) for p in ema.parameters()])
        every = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(every, flat)
        agree = all(torch.equal(x, every[0]) for x in every)
        if lead:
            print(f"ranks {'agree' if agree else 'DIFFER'} on all {flat.numel()} weights "
                  f"(model and EMA): sum {float(flat.double().sum()):.9g}")
        dist.barrier()
        dist.destroy_process_group()
        if not agree:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
