"""ctsr-upscale of the build directory without --model and without CTSR_MODEL_PATH (meson test
`cli-uninstalled`): it finds the default model itself (the source tree's
models/ctsr-x2.safetensors, before an installed one), upscales a small image x2, and names the
model it used. A copy of the binary outside the build directory takes the installed model only.

    /usr/bin/python3 tests/cli_default_model.py --upscale build/engine/ctsr-upscale \\
        --installed /usr/local/share/ctsr/ctsr-x2.safetensors --source models/ctsr-x2.safetensors
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def run(binary, src, dst, env):
    p = subprocess.run([binary, src, dst], capture_output=True, text=True, env=env)
    print(f"$ {binary} {src} {dst}  -> exit {p.returncode}\n{p.stderr.strip()}", flush=True)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upscale", required=True, help="the built ctsr-upscale")
    ap.add_argument("--installed", required=True, help="the installed default model's path")
    ap.add_argument("--source", required=True, help="the source tree's default model")
    a = ap.parse_args()

    installed = os.path.exists(a.installed)
    expected = os.path.abspath(a.source)
    if installed:
        print(f"note: {a.installed} exists; the build tree's binary must still take {expected}")
    env = {k: v for k, v in os.environ.items() if k != "CTSR_MODEL_PATH"}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="ctsr-cli-") as tmp:
        src, dst = os.path.join(tmp, "in.png"), os.path.join(tmp, "out.png")
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(src)

        p = run(a.upscale, src, dst, env)
        if p.returncode != 0:
            fail("the build tree's ctsr-upscale failed without --model")
        if f"model {expected}," not in p.stderr:
            fail(f"expected the default model {expected}")
        with Image.open(dst) as out:
            if out.size != (32, 24):
                fail(f"output {out.size[0]}x{out.size[1]}, expected 32x24")

        # a copy outside the build tree only knows the installed model (when there is none,
        # it fails naming it)
        copy = os.path.join(tmp, "ctsr-upscale")
        shutil.copy2(a.upscale, copy)
        p = run(copy, src, dst, env)
        if not installed and (p.returncode == 0 or a.installed not in p.stderr):
            fail(f"a copy outside the build tree should fail naming {a.installed}")
        if installed and (p.returncode != 0 or f"model {a.installed}," not in p.stderr):
            fail(f"a copy outside the build tree should take {a.installed}")
    print("PASS")


if __name__ == "__main__":
    main()
