"""Baseline table on the validation set: bicubic, each teacher, and pixel blends of the best
fidelity teacher (highest mean PSNR) and the best realness teacher (lowest set NIQE).

    python3 baseline.py [--crop-lr 128] [--out cache/baseline] [--threads 1]

Inputs: data.validation_set (manifest validation ids, centre crop_hr HR crops degraded once with
the manifest's seeds), optionally centre-cropped further to --crop-lr LR px (HR 2x). Every
method's x2 output is rounded to uint8, then scored against the HR crop: PSNR and SSIM (Y of
BT.601, crop_border 2), NIQE (crop_border 0) and BRISQUE on the output, each the mean over the
images; "NIQE (set)": one NIQE over the 96x96 patches of all outputs pooled (niqe_pooled). Blend at alpha: (1 - alpha) * fidelity + alpha * realness in [0, 1], rounded to uint8.
Time: teacher seconds per megapixel of LR input (the output has 4x the pixels), one image at a
time, torch threads as given. Outputs and times are kept in OUT (one .npz per method) so a rerun
only computes what is missing; OUT/results.json and the markdown table on stdout are the result.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import data  # noqa: E402
import metrics  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "cache", "baseline")


def bicubic_x2(lr_u8):
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(lr_u8).permute(2, 0, 1)[None].float() / 255.0
    y = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    return (y[0] * 255).round().byte().permute(1, 2, 0).numpy()


def teacher_x2_u8(name, lr_u8):
    import torch
    from teachers import teacher_x2
    x = torch.from_numpy(lr_u8).permute(2, 0, 1)[None].float() / 255.0
    y = teacher_x2(name, x)
    return (y[0] * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def crop_pair(hr, lr, crop_lr):
    h, w = lr.shape[:2]
    c = min(crop_lr, h, w)
    y, x = (h - c) // 2, (w - c) // 2
    return hr[2 * y:2 * (y + c), 2 * x:2 * (x + c)], lr[y:y + c, x:x + c]


def niqe_pooled(imgs):
    """NIQE of a set: the 96x96 patches of all images pooled into one MVG fit (the per-image
    score of a 256x256 output rests on 4 patches only)."""
    P = metrics.load_niqe_params()
    feat = np.concatenate([metrics.niqe_patch_features(np.round(metrics.rgb_to_y(o)),
                                                       P["window"])[0] for o in imgs])
    ok = feat[~np.isnan(feat).any(axis=1)]
    d = P["mu"] - np.nanmean(feat, axis=0)
    inv = np.linalg.pinv((P["cov"] + np.cov(ok, rowvar=False)) / 2)
    return float(np.sqrt(d @ inv @ d))


def score(outs, hrs):
    r = dict(psnr=[], ssim=[], niqe=[], brisque=[])
    for o, h in zip(outs, hrs):
        r["psnr"].append(metrics.psnr(o, h, crop_border=2))
        r["ssim"].append(metrics.ssim(o, h, crop_border=2))
        r["niqe"].append(metrics.niqe(o))
        r["brisque"].append(metrics.brisque(o))
    r = {k: float(np.mean(v)) for k, v in r.items()}
    r["niqe_set"] = niqe_pooled(outs)
    return r


def main(argv=None):
    from teachers import TEACHERS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--crop-lr", type=int, default=128)
    ap.add_argument("--teachers", default="waifu2x-scale2,waifu2x-noise0,waifu2x-noise1,"
                    "waifu2x-noise2,waifu2x-noise3,realesrgan-x4fast,realesrgan-x4plus")
    ap.add_argument("--alphas", default="0.25,0.5,0.75")
    ap.add_argument("--preset", default="realesrgan", choices=data.VAL_PRESETS,
                    help="validation degradation: Real-ESRGAN's (harsh) or degrade.MILD")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--manifest", default=data.DEFAULT_MANIFEST)
    ap.add_argument("--shared-root", default=data.DEFAULT_SHARED_ROOT)
    ap.add_argument("--system-root", default=data.DEFAULT_SYSTEM_ROOT)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    man = data.load_manifest(a.manifest)
    val = data.validation_set(man, a.shared_root, a.system_root, a.preset)
    sfx = "" if a.preset == "realesrgan" else "_" + a.preset
    hkey = "lr_sha256" if a.preset == "realesrgan" else a.preset + "_lr_sha256"
    for vid, _, lr in val:
        want = man["validation"].get(hkey, {}).get(vid)
        if want and want != data.sha256_rgb(lr):
            print(f"warning: {vid}: validation LR differs from the manifest's hash", file=sys.stderr)
    pairs = [crop_pair(hr, lr, a.crop_lr) for _, hr, lr in val]
    hrs = [p[0] for p in pairs]
    lrs = [p[1] for p in pairs]
    key = data.sha256_rgb(np.concatenate([x.reshape(-1) for x in lrs]))
    os.makedirs(a.out, exist_ok=True)
    lr_mp = sum(x.shape[0] * x.shape[1] for x in lrs) / 1e6

    def run(name, fn):
        p = os.path.join(a.out, f"{name}_{a.crop_lr}{sfx}.npz")
        if os.path.exists(p):
            z = np.load(p)
            if str(z["key"]) == key:
                return list(z["out"]), float(z["seconds"])
        outs, t = [], 0.0
        for i, lr in enumerate(lrs):
            fn(lr[:16, :16]) if i == 0 else None  # warm-up (weights load, allocator)
            t0 = time.time()
            outs.append(fn(lr))
            t += time.time() - t0
        with open(p + ".tmp", "wb") as f:
            np.savez(f, out=np.stack(outs), seconds=t, key=key)
        os.replace(p + ".tmp", p)
        print(f"{name}: {t:.1f} s ({t / lr_mp:.1f} s/MP LR)", file=sys.stderr, flush=True)
        return outs, t

    rows = []
    rows.append(dict(method="ground truth (HR crop)", **score(hrs, hrs), s_per_mp=None))
    outs, t = run("bicubic", bicubic_x2)
    rows.append(dict(method="bicubic", **score(outs, hrs), s_per_mp=t / lr_mp))
    res = {}
    for name in a.teachers.split(","):
        outs, t = run(name, lambda lr, n=name: teacher_x2_u8(n, lr))
        res[name] = outs
        rows.append(dict(method=name, role=TEACHERS[name], **score(outs, hrs), s_per_mp=t / lr_mp))
    fid = [r for r in rows if r.get("role") == "fidelity"]
    real = [r for r in rows if r.get("role") == "realness"]
    if fid and real:
        bf = max(fid, key=lambda r: r["psnr"])["method"]
        br = min(real, key=lambda r: r["niqe_set"])["method"]
        for al in [float(x) for x in a.alphas.split(",")]:
            outs = [np.clip(np.round((1 - al) * f.astype(np.float64) + al * r.astype(np.float64)),
                            0, 255).astype(np.uint8) for f, r in zip(res[bf], res[br])]
            rows.append(dict(method=f"blend {al:g}: {1 - al:g} {bf} + {al:g} {br}",
                             **score(outs, hrs), s_per_mp=None))
    with open(os.path.join(a.out, f"results_{a.crop_lr}{sfx}.json"), "w") as f:
        json.dump(dict(crop_lr=a.crop_lr, preset=a.preset, n_images=len(lrs), threads=a.threads,
                       rows=rows), f,
                  indent=1)
    print(f"{len(lrs)} validation images ({a.preset}), {a.crop_lr}x{a.crop_lr} LR centre crops -> "
          f"{2 * a.crop_lr}x{2 * a.crop_lr}; means over images\n")
    print("| method | PSNR (dB) | SSIM | NIQE | NIQE (set) | BRISQUE | s per LR MP |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        t = "" if r["s_per_mp"] is None else f"{r['s_per_mp']:.1f}"
        print(f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['niqe']:.2f} | {r['niqe_set']:.2f} | "
              f"{r['brisque']:.1f} | {t} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
