"""Trade-off table and figure of trained students against the teachers and their pixel blends.

    cd training && /usr/bin/python3 evaluate.py --model ctsr-x2=../models/ctsr-x2.safetensors \\
        --model ctsr-x2-tiny=../models/ctsr-x2-tiny.safetensors --out ../docs/eval

For each validation set (--sets: the harsh Real-ESRGAN one and the mild one, data.py), the
student is run at t = 0, 0.1, ..., 1 on the 12 validation LR crops and scored as baseline.py
scores the teachers (PSNR / SSIM on Y, NIQE per image, NIQE of the pooled set, BRISQUE). The
teachers' rows and their outputs come from baseline.py's cache (--baseline, run it first for
each set: `baseline.py --preset mild` for the mild one). Writes OUT/eval.json, OUT/eval.md (the
tables and the target checks) and OUT/tradeoff_<set>.png (PSNR vs set NIQE, every method).

Targets checked (issue 7): at t = 0 PSNR >= best fidelity teacher + 0.5 dB and above every
blend; at t = 1 set NIQE <= the realness teacher's (x4plus); for every blend some t is at least
as good on both PSNR and set NIQE (dominance); PSNR falls and NIQE improves as t rises
(monotone, counted as the number of rises/falls against the direction beyond a tolerance).
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import baseline  # noqa: E402
import data  # noqa: E402
from ctsr.export import load_student  # noqa: E402
from train import to_u8  # noqa: E402

TS = tuple(round(0.1 * i, 1) for i in range(11))
REALNESS_REF = "realesrgan-x4plus"


def upscale_u8(model, lr, t):
    """uint8 HxWx3 LR -> uint8 x2 output of the student at t (rounded as the engine does)."""
    with torch.no_grad():
        return to_u8(model(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255.0, float(t)))


def student_rows(model, lrs, hrs, ts):
    rows = []
    for t in ts:
        outs = [upscale_u8(model, lr, t) for lr in lrs]
        rows.append(dict(t=t, **baseline.score(outs, hrs)))
    return rows


def check_targets(srows, base, tol=0.02):
    by = {r["method"]: r for r in base["rows"]}
    fid = [r for r in base["rows"] if r.get("role") == "fidelity"]
    blends = [r for r in base["rows"] if r["method"].startswith("blend")]
    best_fid = max(fid, key=lambda r: r["psnr"])
    s0, s1 = srows[0], srows[-1]
    res = {}
    res["t0_psnr_vs_best_fidelity"] = dict(
        student=s0["psnr"], teacher=best_fid["method"], teacher_psnr=best_fid["psnr"],
        gap=s0["psnr"] - (best_fid["psnr"] + 0.5), ok=s0["psnr"] >= best_fid["psnr"] + 0.5)
    best_blend = max(blends, key=lambda r: r["psnr"]) if blends else None
    if best_blend:
        res["t0_psnr_vs_blends"] = dict(student=s0["psnr"], best_blend=best_blend["method"],
                                        blend_psnr=best_blend["psnr"],
                                        gap=s0["psnr"] - best_blend["psnr"],
                                        ok=s0["psnr"] > best_blend["psnr"])
    ref = by.get(REALNESS_REF)
    if ref:
        res["t1_niqe_vs_realness"] = dict(student=s1["niqe_set"], teacher=REALNESS_REF,
                                          teacher_niqe=ref["niqe_set"],
                                          gap=ref["niqe_set"] - s1["niqe_set"],
                                          ok=s1["niqe_set"] <= ref["niqe_set"])
    dom = {}
    for b in blends:
        ts = [r["t"] for r in srows if r["psnr"] >= b["psnr"] and r["niqe_set"] <= b["niqe_set"]]
        dom[b["method"]] = dict(dominated_at=ts, ok=bool(ts))
    res["dominance"] = dom
    ps = [r["psnr"] for r in srows]
    ns = [r["niqe_set"] for r in srows]
    res["monotone"] = dict(
        psnr_rises=sum(b > a + tol for a, b in zip(ps, ps[1:])),
        niqe_rises=sum(b > a + tol * 10 for a, b in zip(ns, ns[1:])),
        psnr_t0_minus_t1=ps[0] - ps[-1], niqe_t0_minus_t1=ns[0] - ns[-1])
    res["monotone"]["ok"] = (res["monotone"]["psnr_rises"] == 0 and res["monotone"]["niqe_rises"] == 0
                             and ps[0] > ps[-1] and ns[0] > ns[-1])
    bic = by.get("bicubic")
    if bic:
        res["t0_vs_bicubic"] = dict(gap=s0["psnr"] - bic["psnr"])
    return res


def plot(path, title, base, students):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    for r in base["rows"]:
        if r["method"].startswith("ground truth"):
            continue
        blend = r["method"].startswith("blend")
        m = "s" if blend else ("^" if r.get("role") == "realness" else
                               ("o" if r.get("role") == "fidelity" else "x"))
        label = r["method"].split(":")[0] if blend else r["method"]
        ax.scatter(r["niqe_set"], r["psnr"], marker=m, s=30, label=label)
    for name, rows in students.items():
        ax.plot([r["niqe_set"] for r in rows], [r["psnr"] for r in rows], "-", marker=".",
                label=f"{name} (t = 0 ... 1)")
        ax.annotate("t=0", (rows[0]["niqe_set"], rows[0]["psnr"]), fontsize=7)
        ax.annotate("t=1", (rows[-1]["niqe_set"], rows[-1]["psnr"]), fontsize=7)
    ax.set_xlabel("NIQE of the set (lower = more natural)")
    ax.set_ylabel("PSNR-Y (dB, higher = more faithful)")
    ax.set_title(title, fontsize=9)
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fmt_row(name, r):
    return (f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['niqe']:.2f} | "
            f"{r['niqe_set']:.2f} | {r['brisque']:.1f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=path.safetensors")
    ap.add_argument("--sets", default="realesrgan,mild")
    ap.add_argument("--baseline", default=baseline.DEFAULT_OUT)
    ap.add_argument("--crop-lr", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    man = data.load_manifest()
    models = {}
    for spec in a.model:
        name, path = spec.split("=", 1)
        models[name] = load_student(path)
    result, md = {}, []
    for pr in a.sets.split(","):
        sfx = "" if pr == "realesrgan" else "_" + pr
        bpath = os.path.join(a.baseline, f"results_{a.crop_lr}{sfx}.json")
        if not os.path.exists(bpath):
            raise SystemExit(f"{bpath} missing: run baseline.py --crop-lr {a.crop_lr} --preset {pr}")
        with open(bpath, encoding="utf-8") as f:
            base = json.load(f)
        val = data.validation_set(man, preset=pr)
        pairs = [baseline.crop_pair(hr, lr, a.crop_lr) for _, hr, lr in val]
        hrs, lrs = [p[0] for p in pairs], [p[1] for p in pairs]
        students, checks = {}, {}
        for name, m in models.items():
            rows = student_rows(m, lrs, hrs, TS)
            students[name] = rows
            checks[name] = check_targets(rows, base)
            print(f"{pr} {name}: " + ", ".join(f"t={r['t']:g} {r['psnr']:.2f}/{r['niqe_set']:.2f}"
                                              for r in rows), file=sys.stderr, flush=True)
        result[pr] = dict(baseline=base["rows"], students=students, checks=checks)
        plot(os.path.join(a.out, f"tradeoff_{pr}.png"),
             f"x2 on the {pr} validation set ({len(lrs)} crops, {a.crop_lr}px LR)", base, students)
        md.append(f"### {pr} validation set ({len(lrs)} images, {a.crop_lr}x{a.crop_lr} LR)\n")
        md.append("| method | PSNR (dB) | SSIM | NIQE | NIQE (set) | BRISQUE |")
        md.append("|---|---|---|---|---|---|")
        for r in base["rows"]:
            md.append(fmt_row(r["method"], r))
        for name, rows in students.items():
            for r in rows:
                md.append(fmt_row(f"**{name}** t = {r['t']:g}", r))
        md.append("")
        for name, c in checks.items():
            md.append(f"Targets, {name}: " + json.dumps(c, default=float))
            md.append("")
    with open(os.path.join(a.out, "eval.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(a.out, "eval.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
