"""Interim CTSR x2 model: the "default" student trained briefly with L1 to the ground truth.

HR = photo (cropped to even size), LR = PIL bicubic x2 downscale (antialiased). The first
5 photos in sorted order are held out for validation. t ~ U[0, 1] per sample is only an
input here (no teachers yet).

    python3 train_interim.py --photos PHOTO_DIR [--steps 3000] [--minutes 40]
    python3 train_interim.py --photos PHOTO_DIR --eval-only

Checkpoints to --workdir every 200 steps and resumes from there automatically. At the end
it evaluates (workdir/eval.json) and exports models/ctsr-x2-interim.safetensors.
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from ctsr.export import export, load_student  # noqa: E402
from ctsr.student import CONFIGS, Student, n_params  # noqa: E402

SCALE = 2
N_VAL = 5
CKPT_EVERY = 200
NAME = "ctsr-x2-interim"


def list_photos(d):
    fs = sorted(f for f in glob.glob(os.path.join(d, "*"))
                if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if len(fs) <= N_VAL:
        raise SystemExit(f"need more than {N_VAL} photos in {d}")
    return fs


def load_pair(path):
    """-> (lr uint8 [h,w,3], hr uint8 [2h,2w,3])."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    w, h = w - w % SCALE, h - h % SCALE
    im = im.crop((0, 0, w, h))
    lr = im.resize((w // SCALE, h // SCALE), Image.BICUBIC)
    return np.asarray(lr), np.asarray(im)


def to_tensor(a):
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float().div_(255.0)


def sample_batch(data, rng, batch, crop):
    lrs, hrs = [], []
    for _ in range(batch):
        lr, hr = data[rng.randint(len(data))]
        y = rng.randint(lr.shape[0] - crop + 1)
        x = rng.randint(lr.shape[1] - crop + 1)
        l = lr[y:y + crop, x:x + crop]
        h = hr[SCALE * y:SCALE * (y + crop), SCALE * x:SCALE * (x + crop)]
        if rng.rand() < 0.5:
            l, h = l[:, ::-1], h[:, ::-1]
        if rng.rand() < 0.5:
            l, h = l[::-1], h[::-1]
        lrs.append(to_tensor(l))
        hrs.append(to_tensor(h))
    t = torch.from_numpy(rng.rand(batch).astype(np.float32))
    return torch.stack(lrs), torch.stack(hrs), t


def psnr(a, b, border):
    """a, b: float arrays [H, W, (C)] in [0, 1]."""
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def rgb_to_y(a):
    """BT.601 luma in [0, 1] (the usual SR-benchmark Y channel)."""
    return (16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0


def evaluate(model, val_paths, t=0.5, border=4):
    model.eval()
    rows = []
    for p in val_paths:
        lr, hr = load_pair(p)
        with torch.no_grad():
            y = model(to_tensor(lr)[None], t)[0].permute(1, 2, 0).numpy()
        # 8-bit output, as the element produces
        sr = np.round(y * 255.0) / 255.0
        bic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        bic = bic.astype(np.float64) / 255.0
        gt = hr.astype(np.float64) / 255.0
        rows.append(dict(photo=os.path.basename(p), size=[hr.shape[1], hr.shape[0]],
                         psnr=psnr(sr, gt, border), psnr_bicubic=psnr(bic, gt, border),
                         psnr_y=psnr(rgb_to_y(sr), rgb_to_y(gt), border),
                         psnr_y_bicubic=psnr(rgb_to_y(bic), rgb_to_y(gt), border)))
    mean = {k: float(np.mean([r[k] for r in rows]))
            for k in ("psnr", "psnr_bicubic", "psnr_y", "psnr_y_bicubic")}
    return dict(t=t, border=border, scale=SCALE, n=len(rows),
                note="RGB in [0,1], student output rounded to 8 bits; LR = PIL bicubic x2 "
                     "downscale; bicubic baseline = PIL bicubic upscale of LR",
                mean=mean, per_image=rows)


def save_ckpt(path, model, opt, step, rng):
    tmp = path + ".tmp"
    torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step,
                    np_rng=rng.get_state(), torch_rng=torch.get_rng_state()), tmp)
    os.replace(tmp, path)


def lr_at(step, steps, base):
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, steps) / steps))


def main(argv=None):
    torch.set_num_threads(2)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "data", "photos",
                                                     "sun_hays80"))
    ap.add_argument("--workdir", default=os.path.join(HERE, "runs", "interim"))
    ap.add_argument("--out", default=os.path.join(REPO, "models", NAME + ".safetensors"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=48, help="LR crop size")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-only", action="store_true")
    a = ap.parse_args(argv)
    t_start = time.time()
    photos = list_photos(a.photos)
    val_paths, train_paths = photos[:N_VAL], photos[N_VAL:]
    os.makedirs(a.workdir, exist_ok=True)
    eval_path = os.path.join(a.workdir, "eval.json")

    if a.eval_only:
        model = load_student(a.out)
        res = evaluate(model, val_paths)
        res["model"] = os.path.basename(a.out)
        with open(eval_path, "w") as f:
            json.dump(res, f, indent=2)
        print(json.dumps(res, indent=2), flush=True)
        return

    print(f"loading {len(train_paths)} training photos", flush=True)
    data = [load_pair(p) for p in train_paths]
    print(f"loaded in {time.time() - t_start:.1f}s", flush=True)

    torch.manual_seed(a.seed)
    model = Student(CONFIGS["default"])
    with torch.no_grad():  # start close to the bilinear path: small residual at step 0
        model.tail.weight.mul_(0.1)
        model.tail.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    rng = np.random.RandomState(a.seed)
    step = 0
    ckpt = os.path.join(a.workdir, "checkpoint.pt")
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        rng.set_state(st["np_rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resumed from {ckpt} at step {step}", flush=True)
    print(f"params {n_params(model)}, steps {a.steps}, minutes {a.minutes}", flush=True)

    model.train()
    t_log, n_log, loss_sum = time.time(), 0, 0.0
    out_of_time = False
    while step < a.steps:
        if a.minutes is not None and time.time() - t_start > a.minutes * 60:
            out_of_time = True
            break
        cur_lr = lr_at(step, a.steps, a.lr)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        lr_img, hr_img, t = sample_batch(data, rng, a.batch, a.crop)
        loss = F.l1_loss(model(lr_img, t), hr_img)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_sum += loss.item()
        n_log += 1
        if step % a.log_every == 0 or step == a.steps:
            now = time.time()
            print(f"step {step} loss {loss_sum / n_log:.5f} lr {cur_lr:.2e} "
                  f"steps/s {n_log / (now - t_log):.3f}", flush=True)
            t_log, n_log, loss_sum = now, 0, 0.0
        if step % CKPT_EVERY == 0:
            save_ckpt(ckpt, model, opt, step, rng)
    save_ckpt(ckpt, model, opt, step, rng)
    if out_of_time:
        print(f"wall-clock budget reached at step {step}", flush=True)

    res = evaluate(model, val_paths)
    res["steps"] = step
    with open(eval_path, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2), flush=True)
    prov = {"name": NAME,
            "trained": "L1 to ground truth on x2 bicubic downscales of sun_hays80 (5 held out)",
            "steps": step,
            "val_psnr": round(res["mean"]["psnr"], 3),
            "val_psnr_bicubic": round(res["mean"]["psnr_bicubic"], 3)}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    export(model.eval(), a.out, "F32", prov)
    print(f"exported {a.out} ({time.time() - t_start:.0f}s total)", flush=True)


if __name__ == "__main__":
    main()
