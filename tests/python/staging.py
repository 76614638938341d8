"""What the tests that need a build directory or an installed tree share: which build
directory to use, and `meson install` into a staging directory (--destdir), as a package or a
user's `meson install` would lay it out, without touching the system.

The build directory: $CTSR_BUILD_DIR, else the first of build-test (scripts/test.sh) and
build that holds the file the test needs.
"""
import os
import subprocess

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def build_dir(needs=os.path.join("gst", "libgstctsr.so"), what="ctsrupscale plugin"):
    cands = [os.environ.get("CTSR_BUILD_DIR"), "build-test", "build"]
    for c in cands:
        if not c:
            continue
        d = c if os.path.isabs(c) else os.path.join(REPO, c)
        if os.path.exists(os.path.join(d, needs)):
            return d
    pytest.fail(f"no built {what} ({needs}) in $CTSR_BUILD_DIR, build-test "
                "or build: meson setup build -Dgst=enabled && meson compile -C build")


def stage_install(build, stage):
    """`meson install` of the build directory into the directory `stage` (--destdir); fails
    the test when it does not succeed. Returns stage."""
    p = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
                        "--destdir", str(stage)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return stage


def find_files(stage, name):
    """Every file (or symbolic link) called `name` under stage."""
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs if f == name)
