"""Training / validation data for CTSR: the manifest of HR photographs, HR loading (downscaled),
patch cropping, and LR synthesis with degrade.py.

    from data import load_manifest, load_hr, random_patch, make_lr, validation_set
    man = load_manifest()                         # training/data/manifest.json
    hr = load_hr(man["images"][0])                # H x W x 3 uint8 RGB, downscaled, H, W % 4 == 0
    val = validation_set(man)                     # [(id, hr_crop uint8, lr uint8), ...] (fixed seeds)

Manifest (training/data/manifest.json): `images` entries {id, source ("shared" | "debian"),
package (Debian package or null), file (relative to the shared root, or to the system data dir
/usr/share for "debian"), size [w, h] of the file, downscale (HR = file resized by this factor,
PIL bicubic with antialiasing, then cut to a multiple of 4 px, top-left kept), licence, split
("train" | "val")}; `packages`: the Debian packages the "debian" entries need; `validation`:
{ids, crop_hr, scale, seeds {id: seed}, lr_sha256 {id: sha256 of the LR crop's raw RGB bytes}}.

Validation set: the centre crop_hr x crop_hr of each validation HR, degraded once by
degrade.degrade(crop, seed) (scale 2) -> crop_hr/2 LR, rounded to uint8.

CLI:
    python3 data.py check                        # every manifest file resolves (exit 1 if not)
    python3 data.py val --out DIR                # write the validation HR/LR PNGs, check hashes
    python3 data.py val --record                 # (re)record lr_sha256 in the manifest
Options: --manifest, --shared-root (default <repo>/../shared), --system-root (default /usr/share).
"""
import argparse
import collections
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_MANIFEST = os.path.join(HERE, "data", "manifest.json")
DEFAULT_SHARED_ROOT = os.path.join(REPO, "..", "shared")
DEFAULT_SYSTEM_ROOT = "/usr/share"

Image.MAX_IMAGE_PIXELS = None


def load_manifest(path=None):
    with open(path or DEFAULT_MANIFEST, encoding="utf-8") as f:
        man = json.load(f)
    if man.get("format") != "gst-ctsr-data-manifest":
        raise ValueError(f"{path}: not a gst-ctsr data manifest")
    return man


def entries(man, split=None):
    """Manifest images of one split ("train", "val") or all, in manifest order."""
    return [e for e in man["images"] if split is None or e["split"] == split]


def by_id(man):
    return {e["id"]: e for e in man["images"]}


def resolve(entry, shared_root=None, system_root=None):
    """Absolute path of an entry's file (not checked for existence)."""
    if entry["source"] == "shared":
        root = shared_root or DEFAULT_SHARED_ROOT
    elif entry["source"] == "debian":
        root = system_root or DEFAULT_SYSTEM_ROOT
    else:
        raise ValueError(f"unknown source {entry['source']!r}")
    return os.path.normpath(os.path.join(root, entry["file"]))


def missing(man, shared_root=None, system_root=None):
    """[(entry, path)] of manifest files that do not exist."""
    out = []
    for e in man["images"]:
        p = resolve(e, shared_root, system_root)
        if not os.path.isfile(p):
            out.append((e, p))
    return out


def check_message(miss):
    pk = sorted({e["package"] for e, _ in miss if e["package"]})
    msg = f"{len(miss)} manifest file(s) missing, e.g. {miss[0][1]}"
    if pk:
        msg += f"; install the Debian packages: apt-get install {' '.join(pk)}"
    return msg


def hr_from_file(path, downscale):
    """HR image: the file resized by `downscale` (PIL bicubic, antialiased) then cut to a
    multiple of 4 px; H x W x 3 uint8 RGB."""
    im = Image.open(path).convert("RGB")
    if downscale != 1.0:
        w, h = im.size
        im = im.resize((max(4, round(w * downscale)), max(4, round(h * downscale))),
                       Image.BICUBIC)
    a = np.asarray(im)
    h, w = a.shape[0] // 4 * 4, a.shape[1] // 4 * 4
    return np.ascontiguousarray(a[:h, :w])


_hr_cache = collections.OrderedDict()
HR_CACHE_SIZE = 6


def load_hr(entry, shared_root=None, system_root=None):
    """HR image of a manifest entry (LRU-cached, HR_CACHE_SIZE images)."""
    p = resolve(entry, shared_root, system_root)
    key = (p, entry["downscale"])
    if key in _hr_cache:
        _hr_cache.move_to_end(key)
        return _hr_cache[key]
    if not os.path.isfile(p):
        pk = f" (Debian package {entry['package']}: apt-get install {entry['package']})" \
            if entry.get("package") else ""
        raise FileNotFoundError(f"{p}{pk}")
    a = hr_from_file(p, entry["downscale"])
    _hr_cache[key] = a
    while len(_hr_cache) > HR_CACHE_SIZE:
        _hr_cache.popitem(last=False)
    return a


def random_patch(hr, size, rng):
    """A size x size crop at a position drawn from rng (numpy Generator); returns (crop, (y, x))."""
    h, w = hr.shape[:2]
    if h < size or w < size:
        raise ValueError(f"image {w}x{h} smaller than the patch {size}")
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return hr[y:y + size, x:x + size], (y, x)


def centre_crop(hr, size):
    h, w = hr.shape[:2]
    s = min(size, h // 4 * 4, w // 4 * 4)
    y, x = (h - s) // 2, (w - s) // 2
    return hr[y:y + s, x:x + s]


def make_lr(hr_patch, seed, opt=None):
    """degrade.degrade of a uint8 H x W x 3 patch -> uint8 H/2 x W/2 x 3 (exact 8-bit levels)."""
    from degrade import degrade
    lq = degrade(hr_patch, seed, opt=opt)
    return np.clip(np.round(lq * 255.0), 0, 255).astype(np.uint8)


def sha256_rgb(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


# The mild validation set degrades the same crops with degrade.MILD and the seed + this offset.
MILD_SEED_OFFSET = 100000
VAL_PRESETS = ("realesrgan", "mild")


def validation_item(man, vid, shared_root=None, system_root=None, preset="realesrgan"):
    import degrade
    v = man["validation"]
    hr = centre_crop(load_hr(by_id(man)[vid], shared_root, system_root), v["crop_hr"])
    if preset == "mild":
        return vid, hr, make_lr(hr, v["seeds"][vid] + MILD_SEED_OFFSET, degrade.MILD)
    if preset != "realesrgan":
        raise ValueError(f"unknown validation preset {preset!r} (one of {VAL_PRESETS})")
    return vid, hr, make_lr(hr, v["seeds"][vid])


def validation_set(man, shared_root=None, system_root=None, preset="realesrgan"):
    """[(id, hr_crop uint8, lr uint8)] for the manifest's validation ids, in order. preset
    "realesrgan": Real-ESRGAN's second-order degradation (the harsh set); "mild": degrade.MILD
    with the seeds + MILD_SEED_OFFSET (light blur, low noise, moderate JPEG)."""
    return [validation_item(man, vid, shared_root, system_root, preset)
            for vid in man["validation"]["ids"]]


def _sys_path():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)


def main(argv=None):
    _sys_path()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["check", "val"])
    ap.add_argument("--manifest", default=DEFAULT_MANIFEST)
    ap.add_argument("--shared-root", default=DEFAULT_SHARED_ROOT)
    ap.add_argument("--system-root", default=DEFAULT_SYSTEM_ROOT)
    ap.add_argument("--out", help="val: write <id>_hr.png / <id>_lr.png here")
    ap.add_argument("--record", action="store_true", help="val: write lr_sha256 into the manifest")
    ap.add_argument("--preset", default="realesrgan", choices=VAL_PRESETS,
                    help="val: the harsh set (lr_sha256) or the mild one (mild_lr_sha256)")
    a = ap.parse_args(argv)
    man = load_manifest(a.manifest)
    if a.cmd == "check":
        miss = missing(man, a.shared_root, a.system_root)
        cnt = collections.Counter((e["package"] or "shared", e["split"]) for e in man["images"])
        for k, n in sorted(cnt.items()):
            print(f"{k[0]:30s} {k[1]:5s} {n}")
        if miss:
            print(check_message(miss), file=sys.stderr)
            return 1
        print(f"all {len(man['images'])} files present")
        return 0
    bad = 0
    rec = {}
    key = "lr_sha256" if a.preset == "realesrgan" else "mild_lr_sha256"
    for vid, hr, lr in validation_set(man, a.shared_root, a.system_root, a.preset):
        h = sha256_rgb(lr)
        rec[vid] = h
        want = man["validation"].get(key, {}).get(vid)
        ok = "recorded" if a.record else ("ok" if want == h else "MISMATCH")
        bad += ok == "MISMATCH"
        print(f"{vid:60s} {lr.shape[1]}x{lr.shape[0]} {h[:16]} {ok}")
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            base = os.path.join(a.out, vid.replace("/", "__") + ("_mild" if key != "lr_sha256" else ""))
            Image.fromarray(hr).save(base + "_hr.png")
            Image.fromarray(lr).save(base + "_lr.png")
    if a.record:
        man["validation"][key] = rec
        tmp = a.manifest + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(man, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, a.manifest)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
