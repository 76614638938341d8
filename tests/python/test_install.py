"""libctsr as `meson install` ships it, for an application that embeds the engine without
GStreamer: the versioned shared library exporting exactly the API of ctsr.h, the header under
include/ctsr/, the pkg-config file, the models; the README's example (examples/upscale-frame.c)
built with nothing but the installed .pc and run on the default Vulkan device (lavapipe without
a GPU); the installed ctsr-upscale on the installed library.

The tree is staged with `meson install --destdir` (staging.py); pkg-config reads the staged
.pc through PKG_CONFIG_SYSROOT_DIR, as for any staged or cross install. Fails, never skips,
when the library is not built, a tool is missing or no Vulkan device exists.
"""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from staging import REPO, build_dir, find_files, stage_install

HEADER = os.path.join(REPO, "engine", "include", "ctsr.h")
EXAMPLE = os.path.join(REPO, "examples", "upscale-frame.c")


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    build = build_dir(os.path.join("engine", "libctsr.so"), "libctsr")
    return stage_install(build, tmp_path_factory.mktemp("stage"))


def one(stage, name):
    found = find_files(stage, name)
    assert len(found) == 1, (name, found)
    return found[0]


def project_version():
    text = open(os.path.join(REPO, "meson.build"), encoding="utf-8").read()
    return re.search(r"version:\s*'([0-9.]+)'", text).group(1)


def pkg_env(stage):
    pc = one(stage, "ctsr.pc")
    return dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc),
                PKG_CONFIG_SYSROOT_DIR=str(stage), PKG_CONFIG_LIBDIR=os.path.dirname(pc))


def pkg_config(stage, *args):
    p = subprocess.run(["pkg-config", *args, "ctsr"], capture_output=True, text=True,
                       env=pkg_env(stage), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def declared_functions():
    """Names of the functions ctsr.h declares (comments stripped)."""
    text = open(HEADER, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return set(re.findall(r"\b(ctsr_\w+)\s*\(", text))


def test_layout_and_soname(stage):
    major, minor, _ = project_version().split(".")
    soversion = f"0.{minor}" if major == "0" else major
    real = one(stage, f"libctsr.so.{project_version()}")
    libdir = os.path.dirname(real)
    # the link-time name and the soname are links to the real file
    for link in ("libctsr.so", f"libctsr.so.{soversion}"):
        path = os.path.join(libdir, link)
        assert os.path.islink(path) and os.path.realpath(path) == os.path.realpath(real), path
    p = subprocess.run(["readelf", "-d", real], capture_output=True, text=True, check=True)
    assert f"Library soname: [libctsr.so.{soversion}]" in p.stdout
    # the header under a ctsr-specific directory; the models; no test support, no archive
    assert one(stage, "ctsr.h").endswith(os.path.join("include", "ctsr", "ctsr.h"))
    assert open(one(stage, "ctsr.h"), "rb").read() == open(HEADER, "rb").read()
    assert one(stage, "ctsr-x2.safetensors").endswith(os.path.join("share", "ctsr",
                                                                   "ctsr-x2.safetensors"))
    one(stage, "ctsr-x2-tiny.safetensors")
    names = [f for _, _, fs in os.walk(stage) for f in fs]
    assert not [n for n in names if n.endswith(".a") or "internal" in n or "test" in n], names


def test_exports_exactly_the_public_api(stage):
    real = one(stage, f"libctsr.so.{project_version()}")
    p = subprocess.run(["nm", "-D", "--defined-only", real], capture_output=True, text=True,
                       check=True)
    exported = {line.split()[-1] for line in p.stdout.splitlines() if line.strip()}
    declared = declared_functions()
    assert "ctsr_process_rgba8" in declared and len(declared) > 20, declared
    assert exported == declared, (f"exported, not declared: {sorted(exported - declared)}; "
                                  f"declared, not exported: {sorted(declared - exported)}")


def test_pkg_config_file(stage):
    assert pkg_config(stage, "--modversion") == project_version()
    cflags, libs = pkg_config(stage, "--cflags"), pkg_config(stage, "--libs")
    assert cflags == "-I" + os.path.dirname(one(stage, "ctsr.h"))
    assert "-lctsr" in libs.split()
    assert pkg_config(stage, "--variable=default_model") == one(stage, "ctsr-x2.safetensors")


def test_example_built_against_the_installed_pc(stage, tmp_path):
    """The README's example: compiled and linked with the staged .pc alone (no source tree
    include path), run with the staged library, on the installed default model."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler"
    exe = tmp_path / "upscale-frame"
    model = pkg_config(stage, "--variable=default_model")
    cmd = ([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", EXAMPLE, "-o", str(exe)]
           + pkg_config(stage, "--cflags").split() + pkg_config(stage, "--libs").split()
           + [f'-DCTSR_DEFAULT_MODEL="{model}"'])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, " ".join(cmd) + "\n" + p.stderr
    libdir = os.path.dirname(one(stage, "libctsr.so"))
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    # it resolves libctsr from the staged tree, not from a build directory or the system
    p = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=env, check=True)
    line = [x for x in p.stdout.splitlines() if "libctsr" in x]
    assert len(line) == 1 and str(stage) in line[0], p.stdout
    p = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"^64x48 -> 128x96 \(x2, t = 0\.50\) on (.+)$", p.stdout, re.M)
    assert m, p.stdout
    m = re.search(r"^mean RGB in (.*) out (.*)$", p.stdout, re.M)
    assert m, p.stdout
    mean_in, mean_out = (np.array([float(x) for x in g.split()]) for g in m.groups())
    assert mean_in.shape == mean_out.shape == (3,), p.stdout
    # an upscaler keeps each channel's mean: within 3 levels (the default model: < 0.7)
    assert np.abs(mean_in - mean_out).max() < 3, p.stdout
    # a model that does not exist is a clear error naming it
    p = subprocess.run([str(exe), str(tmp_path / "none.safetensors")], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 1 and "none.safetensors: No such file or directory" in p.stderr


def test_installed_cli_on_the_installed_library(stage, tmp_path):
    """ctsr-upscale finds the staged libctsr through its $ORIGIN-relative run path (no
    LD_LIBRARY_PATH) and upscales with the staged model."""
    exe = one(stage, "ctsr-upscale")
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    p = subprocess.run(["ldd", exe], capture_output=True, text=True, env=env, check=True)
    line = [x for x in p.stdout.splitlines() if "libctsr" in x]
    assert len(line) == 1 and str(stage) in line[0], p.stdout
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    p = subprocess.run([exe, "--model", one(stage, "ctsr-x2-tiny.safetensors"),
                        str(tmp_path / "in.png"), str(tmp_path / "out.png")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "out.png").size == (32, 24)
