"""training/ctsr_eval.py: end to end through the real element (the plugin of a build directory on
the default Vulkan device: lavapipe without a GPU), and its motion-compensated flicker measure.

The element tests fail, never skip, when the plugin is not built or no Vulkan device exists.
The build directory: $CTSR_BUILD_DIR, else the first of build-test (scripts/test.sh) and build
that holds gst/libgstctsr.so.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ctsr_eval as E
from ctsr.export import load_student
from staging import build_dir, find_files, stage_install

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PHOTOS = os.path.join(REPO, "..", "shared", "data", "photos", "sun_hays80")
# three photographs of sun_hays80 (file name prefixes): buildings, foliage, rock
PICK = ("barn_sun_", "forest_broadleaf_sun_", "badlands_sun_")
TINY = os.path.join(REPO, "models", "ctsr-x2-tiny.safetensors")
# random weights with non-zero FiLM: its output moves far with t, so a timestep that does not
# reach the element frame by frame shows as a failed agreement
GOLDEN = os.path.join(REPO, "tests", "data", "golden_tiny.safetensors")


def run_eval(args, timeout=300):
    cmd = [sys.executable, os.path.join(REPO, "training", "ctsr_eval.py"),
           "--build-dir", build_dir(), "--no-progress", "--threads", "1"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        head = next(r)
        return head, [dict(zip(head, row)) for row in r]


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("hr")
    names = sorted(os.listdir(PHOTOS))
    for prefix in PICK:
        n = next(x for x in names if x.startswith(prefix))
        im = Image.open(os.path.join(PHOTOS, n)).convert("RGB")
        # a 200x160 piece around the centre, saved losslessly: 48 px LR crops, and room to pan
        x0, y0 = (im.width - 200) // 2, (im.height - 160) // 2
        im.crop((x0, y0, x0 + 200, y0 + 160)).save(d / (n.rsplit(".", 1)[0] + ".png"))
    return str(d)


@pytest.fixture(scope="module")
def tiny_run(hr_folder, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("eval"))
    cache = str(tmp_path_factory.mktemp("cache"))
    p = run_eval(["--hr", hr_folder, "--degradation", "mild", "--crop-lr", "48",
                  "--model", "tiny=" + TINY, "--timesteps", "0,0.5,1",
                  "--teachers", "waifu2x-noise1,realesrgan-x4fast", "--alphas", "0.5",
                  "--pan-frames", "4", "--pan-lr", "40", "--pan-margin", "8",
                  "--grid", "2", "--grid-crop", "32", "--grid-zoom", "1",
                  "--cache", cache, "--save-outputs", "--out", out])
    assert p.returncode == 0, p.stdout + p.stderr
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    return out, res, p, cache


def test_element_used_and_agrees_with_pytorch(tiny_run):
    out, res, p, _ = tiny_run
    el = res["element"]
    assert el["source"] == "build" and el["plugin"].endswith(os.path.join("gst", "libgstctsr.so"))
    assert el["device"]
    ag = {r["t"]: r for r in res["agreement"]}
    assert sorted(ag) == [0.0, 0.5, 1.0]
    for r in ag.values():
        assert r["n_images"] == 3 and r["min_db"] >= 50.0 and r["ok"], r


def test_saved_element_outputs_match_pytorch_at_their_t(tiny_run):
    """Independent of the tool's own agreement numbers: the saved element outputs against the
    PyTorch student run here on the saved LR inputs."""
    out, res, _, _ = tiny_run
    model = load_student(TINY)
    lrdir = os.path.join(out, "outputs", "lr")
    files = sorted(os.listdir(lrdir))
    assert len(files) == 3
    for t in (0, 0.5, 1):
        for fn in files:
            lr = np.asarray(Image.open(os.path.join(lrdir, fn)))
            el = np.asarray(Image.open(os.path.join(out, "outputs", f"tiny_t={t:g}", fn)))
            ref = E.torch_student(model, lr, t)
            assert el.shape == ref.shape == (96, 96, 3)
            assert E.agreement_db(el, ref) >= 50.0


def test_tables_and_figures(tiny_run):
    out, res, _, cache = tiny_run
    head, rows = read_csv(os.path.join(out, "summary.csv"))
    assert head == E.SUMMARY_COLS
    methods = [r["method"] for r in rows]
    assert methods[:4] == ["ground truth (HR)", "bicubic", "waifu2x-noise1", "realesrgan-x4fast"]
    assert "blend 0.5 (0.5 waifu2x-noise1 + 0.5 realesrgan-x4fast)" in methods
    assert methods[-3:] == ["tiny t=0", "tiny t=0.5", "tiny t=1"]
    for r in rows[1:]:
        for k in ("psnr", "ssim", "niqe", "niqe_set", "brisque"):
            assert np.isfinite(float(r[k])), (r["method"], k)
        assert 10 < float(r["psnr"]) < 60 and 0 < float(r["ssim"]) <= 1
    for r in rows:
        if r["kind"] in ("teacher", "student"):
            assert float(r["s_per_lr_mp"]) > 0
    head, prow = read_csv(os.path.join(out, "per_image.csv"))
    assert head == E.PER_IMAGE_COLS
    assert len(prow) == 3 * (len(rows) - 1)  # every method but the truth row, 3 images
    assert all(float(r["agreement_db"]) >= 50 for r in prow if r["method"].startswith("tiny"))
    head, arow = read_csv(os.path.join(out, "agreement.csv"))
    assert head == E.AGREEMENT_COLS and len(arow) == 3
    head, frow = read_csv(os.path.join(out, "flicker.csv"))
    assert head == E.FLICKER_COLS
    fl = {r["method"]: float(r["flicker"]) for r in frow}
    assert fl["ground truth (HR windows)"] == 0.0  # the motion is undone exactly
    assert fl["bicubic"] > 0 and fl["realesrgan-x4fast"] > 0
    assert {"tiny t=0", "tiny t=0.5", "tiny t=1"} <= set(fl)
    assert len(res["flicker_goal"]) == 1 and res["flicker_goal"][0]["teacher"] == "realesrgan-x4fast"
    # summary rows in the JSON equal the CSV's
    assert [r["method"] for r in res["summary"]] == methods
    for name in ("tradeoff.png", "flicker.png"):
        im = Image.open(os.path.join(out, name))
        assert im.width >= 300 and im.height >= 200, name
    # grid: 2 rows, 9 columns (LR, bicubic, 2 teachers, t = 0, 0.5, 1, difference, HR) of
    # 32 px tiles, 4 px apart, under a 30 px header; the tiles are the outputs' own pixels
    g = np.asarray(Image.open(os.path.join(out, "grid.png")).convert("RGB"))
    assert g.shape == (30 + 2 * 32 + 4, 9 * 32 + 8 * 4, 3)
    rows_used = res["config"]["grid_rows"]
    assert len(rows_used) == 2
    for i, name in enumerate(rows_used):
        stem = E.safe_name(os.path.splitext(name)[0]) + ".png"
        for j, meth in ((1, "bicubic"), (6, "tiny_t=1")):
            tile = g[30 + i * 36:30 + i * 36 + 32, j * 36:j * 36 + 32]
            full = np.asarray(Image.open(os.path.join(out, "outputs", meth, stem)))
            win = np.lib.stride_tricks.sliding_window_view(full, (32, 32, 3))[..., 0, :, :, :]
            assert (win == tile).all(axis=(-3, -2, -1)).any(), (name, meth)
    md = open(os.path.join(out, "results.md"), encoding="utf-8").read()
    assert "| **tiny t=1** |" in md and "Agreement" in md
    # teacher outputs cached: 3 images + 4 pan frames per teacher
    for t in ("waifu2x-noise1", "realesrgan-x4fast"):
        assert len([f for f in os.listdir(os.path.join(cache, t)) if f.endswith(".png")]) == 7
    assert res["teacher_cache"]["misses"] == 14


def test_timestep_reaches_every_frame_lr_only(hr_folder, tmp_path):
    """LR-only input, a model whose output moves far with t: each frame at its own t matches
    PyTorch at that t (not at a neighbouring one), and the outputs at t = 0 and 1 differ."""
    p = run_eval(["--lr", hr_folder, "--crop-lr", "48", "--max-images", "2",
                  "--model", "golden=" + GOLDEN, "--timesteps", "0,0.5,1", "--teachers", "none",
                  "--pan-frames", "0", "--grid", "1", "--save-outputs", "--out", str(tmp_path)])
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.load(open(tmp_path / "results.json", encoding="utf-8"))
    assert not res["has_hr"] and all(r["ok"] for r in res["agreement"])
    head, rows = read_csv(tmp_path / "summary.csv")
    assert all(r["psnr"] == "" and float(r["niqe_set"]) > 0 for r in rows)
    model = load_student(GOLDEN)
    fn = sorted(os.listdir(tmp_path / "outputs" / "lr"))[0]
    lr = np.asarray(Image.open(tmp_path / "outputs" / "lr" / fn))
    e0 = np.asarray(Image.open(tmp_path / "outputs" / "golden_t=0" / fn))
    e1 = np.asarray(Image.open(tmp_path / "outputs" / "golden_t=1" / fn))
    r0, r1 = E.torch_student(model, lr, 0.0), E.torch_student(model, lr, 1.0)
    assert E.agreement_db(e0, r0) >= 50 and E.agreement_db(e1, r1) >= 50
    assert E.agreement_db(e1, r0) < 40  # t matters for this model: the check above can fail
    assert (tmp_path / "grid.png").exists() and (tmp_path / "tradeoff.png").exists()


def test_missing_plugin_is_an_error(tmp_path, hr_folder):
    p = subprocess.run([sys.executable, os.path.join(REPO, "training", "ctsr_eval.py"),
                        "--build-dir", str(tmp_path), "--lr", hr_folder, "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "no plugin" in p.stderr


# ----------------------------------------------------------------------------- flicker measure

def scene(h=80, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 200, (h, w, 3)).astype(np.uint8)


def windows(s, origins, size):
    return [s[y:y + size, x:x + size] for y, x in origins]


def test_flicker_zero_for_exact_motion_and_known_offsets():
    s = scene()
    origins = [(k, 3 * k) for k in range(5)]
    fr = windows(s, origins, 40)
    f = E.flicker(fr, origins, margin=4)
    assert f["mean"] == 0.0 and f["max"] == 0.0 and len(f["pairs"]) == 4
    # frame k brightened by 5k levels (no clipping below 200 + 20): every pair differs by 5
    fr2 = [x.astype(np.int32) + 5 * k for k, x in enumerate(fr)]
    assert E.flicker(fr2, origins, margin=4)["mean"] == pytest.approx(5.0)
    # one frame off by 7 levels: pairs (1, 2) and (2, 3) see 7, the others 0
    fr3 = [x.astype(np.int32) + (7 if k == 2 else 0) for k, x in enumerate(fr)]
    f3 = E.flicker(fr3, origins, margin=4)
    assert f3["pairs"] == pytest.approx([0, 7, 7, 0]) and f3["mean"] == pytest.approx(3.5)
    # compared area: 40 - 2 * 4 - motion, both ways
    assert f["pixels"][0] == (40 - 8 - 1) * (40 - 8 - 3)


def test_flicker_wrong_motion_and_negative_motion():
    s = scene(seed=1)
    origins = [(10 - 2 * k, 20 - k) for k in range(4)]  # panning up and left
    fr = windows(s, origins, 32)
    assert E.flicker(fr, origins, margin=2)["mean"] == 0.0
    # the same frames with a motion that is off by one pixel: a random scene differs everywhere
    wrong = [(y, x + k) for k, (y, x) in enumerate(origins)]
    assert E.flicker(fr, wrong, margin=2)["mean"] > 30
    with pytest.raises(ValueError):
        E.flicker(fr, [(0, 40 * k) for k in range(4)], margin=0)  # no overlap


def test_pan_clip_motion_is_what_flicker_undoes():
    s = scene(120, 160, seed=2)
    lrs, hrs, origins = E.pan_clip(s, 24, 5, (1, 3))
    assert [lr.shape for lr in lrs] == [(24, 24, 3)] * 5 and hrs[0].shape == (48, 48, 3)
    assert [tuple(np.subtract(b, a)) for a, b in zip(origins, origins[1:])] == [(1, 3)] * 4
    for (y, x), h in zip(origins, hrs):
        assert np.array_equal(h, s[y:y + 48, x:x + 48])
    assert E.flicker(hrs, origins, margin=2)["mean"] == 0.0
    # even steps move the LR by whole pixels: a shift-equivariant method (bicubic) is then steady
    # away from the borders, odd ones change the sampling phase
    import baseline
    lrs2, _, o2 = E.pan_clip(s, 24, 4, (2, 4))
    assert E.flicker([baseline.bicubic_x2(x) for x in lrs2], o2, margin=8)["mean"] == 0.0
    assert E.flicker([baseline.bicubic_x2(x) for x in lrs], origins, margin=8)["mean"] > 1.0


# ----------------------------------------------------------------------------- the demo's picture

def test_demo_side_by_side(tmp_path):
    """pipelines/side-by-side.py (scripts/demo.sh): five panels of the same crop, exact pixels."""
    rng = np.random.default_rng(3)
    src = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    outs = [rng.integers(60, 190, (100, 120, 3), dtype=np.uint8) for _ in range(3)]
    paths = [tmp_path / n for n in ("in.png", "t0.png", "t05.png", "t1.png")]
    for p, a in zip(paths, [src] + outs):
        Image.fromarray(a).save(p)
    script = os.path.join(REPO, "pipelines", "side-by-side.py")
    out = tmp_path / "sbs.png"
    p = subprocess.run([sys.executable, script] + [str(x) for x in paths] +
                       [str(out), "--crop", "40", "--zoom", "2", "--gain", "4"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    g = np.asarray(Image.open(out).convert("RGB"))
    assert g.shape == (22 + 80, 5 * 80 + 4 * 6, 3)
    bic = np.asarray(Image.fromarray(src).resize((120, 100), Image.BICUBIC))
    panels = [g[22:, i * 86:i * 86 + 80:2][::2] for i in range(5)]  # undo the x2 zoom

    def find(panel, full):
        win = np.lib.stride_tricks.sliding_window_view(full, (40, 40, 3))[..., 0, :, :, :]
        hit = np.argwhere((win == panel).all(axis=(-3, -2, -1)))
        assert len(hit), "panel is not a crop of its image"
        return tuple(hit[0])

    at = find(panels[3], outs[2])
    assert find(panels[0], bic) == at and find(panels[1], outs[0]) == at
    assert find(panels[2], outs[1]) == at
    y, x = at
    d = outs[2][y:y + 40, x:x + 40].astype(np.float64) - outs[0][y:y + 40, x:x + 40]
    assert np.array_equal(panels[4], np.clip(128 + 4 * d, 0, 255).astype(np.uint8))
    # outputs that are not twice the input are refused
    Image.fromarray(outs[0][:90]).save(paths[2])
    p = subprocess.run([sys.executable, script] + [str(x) for x in paths] + [str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "twice" in p.stderr


def test_installed_element(hr_folder, tmp_path):
    """--installed: the element as `meson install` lays it out (staged with --destdir, found
    through GST_PLUGIN_PATH as any installed plugin path would be), not the build tree's."""
    stage = stage_install(build_dir(), tmp_path / "stage")
    plugins = find_files(stage, "libgstctsr.so")
    assert len(plugins) == 1, plugins
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.dirname(plugins[0]),
               GST_REGISTRY=str(tmp_path / "registry.bin"))
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(REPO, "training", "ctsr_eval.py"),
                        "--installed", "--no-progress", "--threads", "1", "--lr", hr_folder,
                        "--crop-lr", "48", "--max-images", "1", "--model", "golden=" + GOLDEN,
                        "--timesteps", "0,1", "--teachers", "none", "--pan-frames", "0",
                        "--grid", "0", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.load(open(out / "results.json", encoding="utf-8"))
    assert all(r["ok"] for r in res["agreement"])
    assert res["element"]["source"] == "installed"
    assert res["element"]["plugin"].endswith("gstreamer-1.0/libgstctsr.so")
