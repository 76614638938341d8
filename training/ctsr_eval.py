"""ctsr-eval: the element `ctsrupscale` evaluated through a real GStreamer pipeline, against
bicubic, the teachers and their pixel blends; agreement with the PyTorch student; temporal
stability on a panning clip; the figures people look at.

    /usr/bin/python3 training/ctsr_eval.py --hr DIR [--degradation realesrgan|mild] --out OUT
    /usr/bin/python3 training/ctsr_eval.py --lr DIR --out OUT            # LR images alone
    /usr/bin/python3 training/ctsr_eval.py --val realesrgan --out OUT    # the manifest's held-out
                                                                         # validation set (data.py)

Inputs (one of):
  --hr DIR   HR images (png/jpg/...); each is (optionally --hr-downscale'd, data.hr_from_file)
             centre-cropped to 2 x --crop-lr and degraded with the named degradation preset of
             degrade.py (--degradation, default realesrgan; seed --seed + crc32(file name) mod
             2^20, so one image's LR does not depend on the others).
  --lr DIR   LR images alone (centre-cropped to --crop-lr): no PSNR / SSIM, only NIQE / BRISQUE.
  --val SET  data.validation_set of the manifest (12 images that training never sees, the
             manifest's seeds, preset "realesrgan" or "mild"), centre-cropped to --crop-lr as
             baseline.py and evaluate.py do (same LR crops at the same --crop-lr).
--crop-lr 0 keeps whole images. --max-images N takes the first N (sorted by file name).

Methods, every one rounded to 8 bits and scored alike:
  bicubic (baseline.bicubic_x2); each teacher of --teachers (teachers.teacher_x2, x4 teachers
  downscaled x0.5; cached as PNG under --cache keyed by teacher and LR bytes, so a rerun only
  computes new inputs); blends (1 - a) F + a R for a in --alphas of the best fidelity teacher F
  (highest PSNR; without HR the first one) and the best realness teacher R (lowest set NIQE);
  the element `ctsrupscale` for each --model at each of --timesteps: appsrc (RGBA) ->
  ctsrupscale -> appsink in one pipeline per model, the timestep property set between frames
  (each frame is pulled before the next one is pushed, so every frame has its own t). The
  plugin comes from the build directory (--build-dir, default $CTSR_BUILD_DIR or "build": its
  gst/libgstctsr.so, with a registry file next to it; a build directory without the plugin is
  an error, exit status 2) or, with --installed, from GStreamer's installed plugins; which file
  was loaded, the Vulkan device and the models go into results.json.

Scores (metrics.py, as baseline.py): PSNR / SSIM on Y (BT.601), border 2, when HR exists; NIQE
and BRISQUE per image; "NIQE (set)" one NIQE of the 96x96 patches of all outputs pooled
(baseline.niqe_pooled). Mean over images.

Agreement: the PyTorch student (ctsr.export.load_student, the source of truth) on the same 8-bit
LR at the same t, rounded as the engine rounds (train.to_u8); PSNR (RGB, whole image) between it
and the element's output per image; each (model, t) must reach --min-agreement dB (default 50),
else the command exits with status 1 after writing everything.

Temporal stability (--pan-frames, 0 to skip): a clip made by panning a window across one
high-resolution photo (--pan-photo, else the full-size source of image --pan-index of the set):
HR frame k is the 2s x 2s window at origin o_k = o_0 + k (dy, dx) (--pan-step in HR pixels per
frame; odd steps move the content by sub-LR-pixel amounts), LR frame k its antialiased bicubic
x0.5 (optionally then degraded, --pan-degradation, seed --seed + k), s = --pan-lr. Every method
upscales every LR frame; the motion is known exactly in output pixels, so the flicker of a clip is
the mean over consecutive frame pairs of the mean absolute difference (8-bit levels, RGB) between
frame k + 1 and frame k moved by the known motion, on the part of the scene both frames show,
--pan-margin output pixels away from every frame border (flicker()). The HR windows themselves
score exactly 0 (a check of the motion compensation, in the table); bicubic shows what the
changing sampling phase alone does. Goal (issue 10): the element at every --pan-timesteps below
each realness teacher.

Writes to --out: results.json (everything, with the command), summary.csv (one row per method),
per_image.csv, agreement.csv, flicker.csv, results.md (the tables), tradeoff.png (PSNR vs set
NIQE of every method, without HR: BRISQUE vs set NIQE), grid.png (side-by-side crops of
--grid images: LR, bicubic, teachers, the first model at t = 0, 0.5, 1, its output at t = 1
minus t = 0 amplified around mid-grey, HR), flicker.png; with --save-outputs every output as PNG
(outputs/<method>/<image>.png, the LR inputs under outputs/lr/).
"""
import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

DEFAULT_CACHE = os.path.join(HERE, "cache", "ctsr-eval")
DEFAULT_MODEL = os.path.join(REPO, "models", "ctsr-x2.safetensors")
DEFAULT_TEACHERS = "waifu2x-noise3,realesrgan-x4plus"
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
GRID_TS = (0.0, 0.5, 1.0)


def rel(p):
    """A path as the docs may show it: relative to the repository root."""
    return os.path.relpath(os.path.abspath(p), REPO)


def plugin_name(path):
    """The plugin file for results.json: relative to the repository when it lies inside it,
    else its last three components (<build dir>/gst/libgstctsr.so, or the installed
    gstreamer-1.0/libgstctsr.so), never a path of this machine."""
    r = rel(path)
    if not r.startswith(".."):
        return r
    return os.path.join(*os.path.abspath(path).split(os.sep)[-3:])


# ----------------------------------------------------------------------------- flicker

def flicker(frames, origins, margin=0):
    """Motion-compensated frame-to-frame difference of a clip.

    frames: sequence of H x W (x C) arrays (same shape); origins: per frame the (y, x) position
    of the frame's top-left pixel in scene coordinates (integers, output pixels), so pixel
    (y, x) of frame k shows scene point (y + oy_k, x + ox_k). For each consecutive pair, the
    scene region both frames show, shrunk by `margin` pixels from each frame's borders, is
    compared: mean |f_{k+1} - f_k| over it (float64, in the frames' units). Returns dict(mean:
    mean over pairs, max: largest pair, pairs: per pair, pixels: compared pixels per pair)."""
    if len(frames) != len(origins) or len(frames) < 2:
        raise ValueError("need at least two frames and one origin per frame")
    h, w = frames[0].shape[:2]
    per, npx = [], []
    for k in range(len(frames) - 1):
        (ay, ax), (by, bx) = (int(v) for v in origins[k]), (int(v) for v in origins[k + 1])
        # scene rectangle inside both frames' margins
        y0, y1 = max(ay, by) + margin, min(ay, by) + h - margin
        x0, x1 = max(ax, bx) + margin, min(ax, bx) + w - margin
        if y1 <= y0 or x1 <= x0:
            raise ValueError(f"frames {k} and {k + 1} share no pixels inside the margin")
        a = frames[k][y0 - ay:y1 - ay, x0 - ax:x1 - ax].astype(np.float64)
        b = frames[k + 1][y0 - by:y1 - by, x0 - bx:x1 - bx].astype(np.float64)
        per.append(float(np.mean(np.abs(b - a))))
        npx.append((y1 - y0) * (x1 - x0))
    return dict(mean=float(np.mean(per)), max=float(np.max(per)), pairs=per, pixels=npx)


def downscale_half_u8(hr_u8):
    """uint8 HR -> uint8 LR at half size: antialiased bicubic (teachers.downscale_half)."""
    import torch
    from teachers import downscale_half
    x = torch.from_numpy(np.ascontiguousarray(hr_u8)).permute(2, 0, 1)[None].float() / 255.0
    y = downscale_half(x).clamp(0, 1)
    return (y[0] * 255.0).round().byte().permute(1, 2, 0).numpy()


def pan_clip(scene, lr_size, n_frames, step, degradation=None, seed=0):
    """A clip panning across `scene` (uint8 HR photo): HR windows of 2 lr_size px whose
    origins move by step = (dy, dx) HR px per frame, centred in the scene; LR frames are their
    antialiased bicubic halves (then degraded with the preset, seed + k, when given).
    Returns (lrs, hr_windows, origins in HR = output pixels)."""
    import data
    import degrade
    size = 2 * lr_size
    dy, dx = step
    span_y, span_x = size + abs(dy) * (n_frames - 1), size + abs(dx) * (n_frames - 1)
    h, w = scene.shape[:2]
    if span_y > h or span_x > w:
        raise ValueError(f"the pan needs {span_x}x{span_y} px, the photo is {w}x{h}")
    cy, cx = (h - span_y) // 2, (w - span_x) // 2
    y_first = cy if dy >= 0 else cy + span_y - size
    x_first = cx if dx >= 0 else cx + span_x - size
    lrs, hrs, origins = [], [], []
    for k in range(n_frames):
        oy, ox = y_first + k * dy, x_first + k * dx
        win = np.ascontiguousarray(scene[oy:oy + size, ox:ox + size])
        if degradation and degradation != "none":
            lr = data.make_lr(win, seed + k, degrade.PRESETS[degradation])
        else:
            lr = downscale_half_u8(win)
        lrs.append(lr)
        hrs.append(win)
        origins.append((oy, ox))
    return lrs, hrs, origins


# ----------------------------------------------------------------------------- the element

class ElementError(RuntimeError):
    pass


_gst = {}


def gst_setup(build_dir=None, installed=False):
    """Gst.init() with the plugin of `build_dir` (its gst/ folder first on GST_PLUGIN_PATH and a
    registry file of its own, so another build's plugin of the same name cannot shadow it) or,
    with installed=True, GStreamer's installed plugins. Must run before anything else in the
    process initialises GStreamer. Returns dict(plugin=the loaded plugin file, source)."""
    if "Gst" in _gst:
        return _gst["info"]
    source = "installed"
    if not installed:
        plugin_dir = os.path.join(os.path.abspath(build_dir), "gst")
        if not os.path.exists(os.path.join(plugin_dir, "libgstctsr.so")):
            raise ElementError(f"no plugin at {plugin_dir}/libgstctsr.so: build it (meson setup "
                               f"{build_dir} -Dgst=enabled && meson compile -C {build_dir}) or "
                               "pass --installed")
        paths = [plugin_dir] + [p for p in os.environ.get("GST_PLUGIN_PATH", "").split(":") if p]
        os.environ["GST_PLUGIN_PATH"] = ":".join(paths)
        os.environ["GST_REGISTRY"] = os.path.join(plugin_dir, "ctsr-eval-registry.bin")
        source = "build"
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import Gst, GstVideo
    Gst.init(None)
    factory = Gst.ElementFactory.find("ctsrupscale")
    if factory is None:
        raise ElementError("GStreamer has no element ctsrupscale (GST_PLUGIN_PATH="
                           f"{os.environ.get('GST_PLUGIN_PATH', '')})")
    plugin = factory.get_plugin().get_filename()
    if source == "build" and os.path.dirname(os.path.abspath(plugin)) != plugin_dir:
        raise ElementError(f"ctsrupscale was loaded from {plugin}, not from {plugin_dir}")
    _gst.update(Gst=Gst, GstVideo=GstVideo,
                info=dict(plugin=plugin, source=source, gstreamer=Gst.version_string()))
    return _gst["info"]


class Element:
    """appsrc (RGBA) -> ctsrupscale -> appsink, one frame in flight at a time."""

    def __init__(self, model, device=-1, timeout_s=600):
        Gst = _gst["Gst"]
        self.timeout = int(timeout_s * Gst.SECOND)
        self.pipe = Gst.parse_launch(
            "appsrc name=src format=time ! ctsrupscale name=sr ! appsink name=sink sync=false")
        self.src = self.pipe.get_by_name("src")
        self.sr = self.pipe.get_by_name("sr")
        self.sink = self.pipe.get_by_name("sink")
        self.sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=RGBA"))
        self.sr.set_property("model-location", os.path.abspath(model))
        self.sr.set_property("device", int(device))
        self.caps = None
        self.n = 0
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            err = self._error()
            self.pipe.set_state(Gst.State.NULL)
            raise ElementError(f"ctsrupscale did not start: {err}")
        self.device_name = self.sr.get_property("device-name")
        self.scale = self.sr.get_property("scale")

    def _error(self):
        Gst = _gst["Gst"]
        msg = self.pipe.get_bus().timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
        if msg is None:
            return "no error message"
        e, dbg = msg.parse_error()
        return f"{e.message} ({dbg})"

    def upscale(self, lr, t):
        """uint8 H x W x 3 -> uint8 sH x sW x 3, the element at timestep t."""
        Gst, GstVideo = _gst["Gst"], _gst["GstVideo"]
        h, w = lr.shape[:2]
        caps = f"video/x-raw,format=RGBA,width={w},height={h},framerate=0/1"
        if caps != self.caps:
            self.src.set_property("caps", Gst.Caps.from_string(caps))
            self.caps = caps
        self.sr.set_property("timestep", float(t))
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[..., :3] = lr
        rgba[..., 3] = 255
        buf = Gst.Buffer.new_wrapped(rgba.tobytes())
        buf.pts = self.n * Gst.SECOND
        buf.duration = Gst.SECOND
        self.n += 1
        if self.src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise ElementError(f"push-buffer failed: {self._error()}")
        sample = self.sink.emit("try-pull-sample", self.timeout)
        if sample is None:
            raise ElementError(f"no output frame: {self._error()}")
        info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        out_buf = sample.get_buffer()
        meta = GstVideo.buffer_get_video_meta(out_buf)
        stride = meta.stride[0] if meta else info.stride[0]
        offset = meta.offset[0] if meta else 0
        ok, m = out_buf.map(Gst.MapFlags.READ)
        if not ok:
            raise ElementError("cannot map the output buffer")
        try:
            a = np.frombuffer(m.data, np.uint8)
            rows = a[offset:offset + stride * info.height].reshape(info.height, stride)
            out = rows[:, :info.width * 4].reshape(info.height, info.width, 4)[..., :3].copy()
        finally:
            out_buf.unmap(m)
        return out

    def close(self):
        Gst = _gst["Gst"]
        self.src.emit("end-of-stream")
        self.pipe.get_bus().timed_pop_filtered(10 * Gst.SECOND,
                                               Gst.MessageType.EOS | Gst.MessageType.ERROR)
        self.pipe.set_state(Gst.State.NULL)


# ----------------------------------------------------------------------------- teachers

class TeacherCache:
    """Teacher x2 outputs kept as PNG files, DIR/<teacher>/<sha256 of the LR's shape and
    bytes>.png, with the seconds the computation took next to each (.seconds): the time columns
    of a rerun are those of the run that computed the output."""

    def __init__(self, root):
        self.root = root
        self.hits = self.misses = 0
        self.seconds = {}

    def get(self, name, lr):
        from PIL import Image
        import baseline
        key = hashlib.sha256(repr(lr.shape).encode() + np.ascontiguousarray(lr).tobytes())
        path = os.path.join(self.root, name, key.hexdigest()[:32] + ".png")
        if os.path.exists(path):
            out = np.asarray(Image.open(path).convert("RGB"))
            if out.shape == (2 * lr.shape[0], 2 * lr.shape[1], 3):
                self.hits += 1
                try:
                    with open(path[:-4] + ".seconds", encoding="utf-8") as f:
                        self._add(name, float(f.read()))
                except (OSError, ValueError):
                    pass
                return out
        t0 = time.time()
        out = baseline.teacher_x2_u8(name, lr)
        dt = time.time() - t0
        self._add(name, dt)
        self.misses += 1
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(out).save(path + ".tmp.png")
        os.replace(path + ".tmp.png", path)
        with open(path[:-4] + ".seconds", "w", encoding="utf-8") as f:
            f.write(f"{dt:.4f}\n")
        return out

    def _add(self, name, dt):
        self.seconds[name] = self.seconds.get(name, 0.0) + dt


# ----------------------------------------------------------------------------- inputs

def safe_name(s):
    """A method or image name as a file name: letters, digits, '.', '-', '_' and '='."""
    return "".join(c if c.isalnum() or c in ".-_=" else "_" for c in s)


def list_images(d):
    if not os.path.isdir(d):
        raise SystemExit(f"{d}: not a directory")
    names = sorted(n for n in os.listdir(d) if n.lower().endswith(IMAGE_EXT))
    if not names:
        raise SystemExit(f"{d}: no images")
    return names


def centre_crop_lr(lr, size):
    if not size:
        return lr
    h, w = lr.shape[:2]
    c = min(size, h, w)
    y, x = (h - c) // 2, (w - c) // 2
    return lr[y:y + c, x:x + c]


def image_seed(seed, name):
    return seed + (zlib.crc32(name.encode("utf-8")) & 0xFFFFF)


def load_inputs(a):
    """[(name, hr or None, lr)], and the full-size photo of each item (for the pan clip)."""
    from PIL import Image
    import data
    import degrade
    import baseline
    items, sources = [], []
    if a.val:
        man = data.load_manifest(a.manifest)
        val = data.validation_set(man, a.shared_root, a.system_root, a.val)
        ents = data.by_id(man)
        for vid, hr, lr in val[:a.max_images or None]:
            if a.crop_lr:
                hr, lr = baseline.crop_pair(hr, lr, a.crop_lr)
            items.append((vid, np.ascontiguousarray(hr), np.ascontiguousarray(lr)))
            sources.append(lambda e=ents[vid]: data.load_hr(e, a.shared_root, a.system_root))
    elif a.hr:
        opt = degrade.PRESETS[a.degradation]
        for n in list_images(a.hr)[:a.max_images or None]:
            full = data.hr_from_file(os.path.join(a.hr, n), a.hr_downscale)
            hr = data.centre_crop(full, 2 * a.crop_lr) if a.crop_lr else full
            lr = data.make_lr(np.ascontiguousarray(hr), image_seed(a.seed, n), opt)
            items.append((n, np.ascontiguousarray(hr), lr))
            sources.append(lambda f=full: f)
    else:
        for n in list_images(a.lr)[:a.max_images or None]:
            full = np.asarray(Image.open(os.path.join(a.lr, n)).convert("RGB"))
            items.append((n, None, np.ascontiguousarray(centre_crop_lr(full, a.crop_lr))))
            sources.append(lambda f=full: f)
    return items, sources


# ----------------------------------------------------------------------------- scoring

def score_images(outs, hrs):
    """Per image dict(psnr, ssim, niqe, brisque) (psnr/ssim None without HR) and the set's
    means with niqe_set."""
    import metrics
    import baseline
    per = []
    for i, o in enumerate(outs):
        r = dict(niqe=metrics.niqe(o), brisque=metrics.brisque(o), psnr=None, ssim=None)
        if hrs[i] is not None:
            r["psnr"] = metrics.psnr(o, hrs[i], crop_border=2)
            r["ssim"] = metrics.ssim(o, hrs[i], crop_border=2)
        per.append(r)
    mean = {}
    for k in ("psnr", "ssim", "niqe", "brisque"):
        v = [r[k] for r in per if r[k] is not None]
        mean[k] = float(np.mean(v)) if v else None
    mean["niqe_set"] = baseline.niqe_pooled(outs)
    return per, mean


def blend(f, r, alpha):
    return np.clip(np.round((1 - alpha) * f.astype(np.float64) + alpha * r.astype(np.float64)),
                   0, 255).astype(np.uint8)


def agreement_db(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def torch_student(model, lr, t):
    import torch
    from train import to_u8
    with torch.no_grad():
        x = torch.from_numpy(np.array(lr, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
        return to_u8(model(x, float(t)))


# ----------------------------------------------------------------------------- figures

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_tradeoff(path, rows, title, has_hr):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=100)
    yk = "psnr" if has_hr else "brisque"
    colours = iter(list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors) * 4)
    student_colours = iter(["black", "tab:cyan", "tab:olive", "tab:gray"] * 4)
    for r in rows:
        if r["kind"] in ("truth", "student"):
            continue
        m = {"bicubic": "x", "blend": "s"}.get(r["kind"],
                                                "^" if r.get("role") == "realness" else "o")
        ax.scatter(r["niqe_set"], r[yk], marker=m, s=32, label=r["method"], zorder=3,
                   color=next(colours))
    blends = [r for r in rows if r["kind"] == "blend"]
    if blends:
        ax.plot([r["niqe_set"] for r in blends], [r[yk] for r in blends], ":", color="grey",
                lw=0.8, zorder=2)
    for model in dict.fromkeys(r["model"] for r in rows if r["kind"] == "student"):
        s = [r for r in rows if r["kind"] == "student" and r["model"] == model]
        ax.plot([r["niqe_set"] for r in s], [r[yk] for r in s], "-", marker=".",
                label=f"{model} (element, t = {s[0]['t']:g} ... {s[-1]['t']:g})", zorder=4,
                color=next(student_colours), lw=1.6)
        for r, dy in ((s[0], 4), (s[-1], -10)):
            ax.annotate(f"t={r['t']:g}", (r["niqe_set"], r[yk]), fontsize=7,
                        textcoords="offset points", xytext=(3, dy))
    ax.set_xlabel("NIQE of the set (lower = more natural)")
    ax.set_ylabel("PSNR-Y (dB, higher = more faithful)" if has_hr
                  else "BRISQUE (lower = more natural)")
    if not has_hr:
        ax.invert_yaxis()
    ax.invert_xaxis()
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _side_by_side():
    """pipelines/side-by-side.py (the demo's picture; numpy and PIL only), loaded by path."""
    import importlib.util
    path = os.path.join(os.path.dirname(HERE), "pipelines", "side-by-side.py")
    spec = importlib.util.spec_from_file_location("ctsr_side_by_side", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def detail_origin(ref, c):
    """Top-left of the c x c window of `ref` with the most gradient energy (stride c/4): the
    demo's rule (pipelines/side-by-side.py), so the grid and the demo pick crops alike."""
    return _side_by_side().detail_origin(ref, c)


def plot_grid(path, columns, crop, zoom, title=None):
    """columns: [(label, [image per row (output size; LR given at its own size)])].
    One c x c output-pixel crop per row, at the place of most detail in the row's reference
    (the last column), every tile magnified `zoom` x with nearest neighbours; exact pixels."""
    plt = _plt()
    nrows = len(columns[0][1])
    ref = columns[-1][1]
    tiles = []
    for i in range(nrows):
        hh, ww = ref[i].shape[:2]
        c = min(crop, hh, ww) // 2 * 2
        oy, ox = detail_origin(ref[i], c)
        oy, ox = oy // 2 * 2, ox // 2 * 2
        row = []
        for _, imgs in columns:
            im = imgs[i]
            if im.shape[0] * 2 == hh:  # the LR: its own crop, nearest x2 to the output grid
                t = im[oy // 2:(oy + c) // 2, ox // 2:(ox + c) // 2].repeat(2, 0).repeat(2, 1)
            else:
                t = im[oy:oy + c, ox:ox + c]
            row.append(t.repeat(zoom, 0).repeat(zoom, 1))
        tiles.append(row)
    tw = tiles[0][0].shape[1]
    th = max(r[0].shape[0] for r in tiles)
    gap, head = 4, 30 + (18 if title else 0)
    W = len(columns) * tw + (len(columns) - 1) * gap
    H = head + nrows * th + (nrows - 1) * gap
    canvas = np.full((H, W, 3), 255, np.uint8)
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            y, x = head + i * (th + gap), j * (tw + gap)
            canvas[y:y + t.shape[0], x:x + t.shape[1]] = t
    dpi = 100
    fig = plt.figure(figsize=(W / dpi, H / dpi), dpi=dpi)
    fig.figimage(canvas, 0, 0, origin="upper")
    for j, (label, _) in enumerate(columns):
        fig.text((j * (tw + gap) + tw / 2) / W, 1 - (head - 8) / H, label, ha="center",
                 va="bottom", fontsize=7)
    if title:
        fig.text(0.5, 1 - 4 / H, title, ha="center", va="top", fontsize=8)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_flicker(path, frows, title):
    plt = _plt()
    rows = [r for r in frows if r["kind"] != "truth"]
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.28 * len(rows)), dpi=100)
    ys = np.arange(len(rows))[::-1]
    colours = {"bicubic": "grey", "teacher": "tab:orange", "student": "tab:blue",
               "blend": "tab:green"}
    ax.barh(ys, [r["flicker"] for r in rows], color=[colours.get(r["kind"], "k") for r in rows])
    ax.set_yticks(ys, [r["method"] for r in rows], fontsize=7)
    for y, r in zip(ys, rows):
        ax.text(r["flicker"], y, f" {r['flicker']:.2f}", va="center", fontsize=7)
    ax.set_xlabel("motion-compensated frame-to-frame difference (8-bit levels, lower = steadier)",
                  fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- output

def fmt(v, nd=2):
    if v is None:
        return ""
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{nd}f}"


def write_csv(path, rows, cols):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r.get(c) is None else
                        (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in cols])


SUMMARY_COLS = ["method", "kind", "role", "model", "t", "n_images", "psnr", "ssim", "niqe",
                "niqe_set", "brisque", "seconds", "s_per_lr_mp"]
PER_IMAGE_COLS = ["method", "image", "psnr", "ssim", "niqe", "brisque", "agreement_db"]
AGREEMENT_COLS = ["model", "t", "n_images", "min_db", "mean_db", "max_abs_diff", "ok"]
FLICKER_COLS = ["method", "kind", "model", "t", "flicker", "flicker_max_pair", "n_pairs"]


def markdown(res):
    L = []
    c = res["config"]
    L.append(f"Made by `{res['command']}` ({res['seconds']['total']:.0f} s; element: "
             f"{res['element']['source']} plugin, device {res['element']['device']}).\n")
    L.append(f"Input: {c['input']}, {res['n_images']} images, LR {c['lr_size']}, x2.\n")
    has_hr = res["has_hr"]
    L.append("| method | PSNR (dB) | SSIM | NIQE | NIQE (set) | BRISQUE | s per LR MP |")
    L.append("|---|---|---|---|---|---|---|")
    for r in res["summary"]:
        name = f"**{r['method']}**" if r["kind"] == "student" else r["method"]
        L.append(f"| {name} | {fmt(r['psnr']) if has_hr else ''} | {fmt(r['ssim'], 4)} | "
                 f"{fmt(r['niqe'])} | {fmt(r['niqe_set'])} | {fmt(r['brisque'], 1)} | "
                 f"{fmt(r.get('s_per_lr_mp'), 1)} |")
    L.append("")
    L.append(f"Agreement of the element with the PyTorch student (PSNR, RGB, 8 bits; bound "
             f"{c['min_agreement']} dB):\n")
    L.append("| model | t | lowest (dB) | mean (dB) | largest difference (levels) | ok |")
    L.append("|---|---|---|---|---|---|")
    for r in res["agreement"]:
        L.append(f"| {r['model']} | {r['t']:g} | {fmt(r['min_db'])} | {fmt(r['mean_db'])} | "
                 f"{r['max_abs_diff']} | {'yes' if r['ok'] else 'NO'} |")
    L.append("")
    if res.get("flicker"):
        p = res["pan"]
        L.append(f"Temporal stability: {p['frames']} frames panning across {p['photo']} "
                 f"({p['lr_size']} px LR frames, {p['step'][1]} px right and {p['step'][0]} px "
                 f"down per frame in HR pixels, LR frames: {p['lr_frames']}); mean motion-"
                 f"compensated frame-to-frame difference, 8-bit levels, {p['margin']} px "
                 "margins excluded:\n")
        L.append("| method | flicker | largest pair |")
        L.append("|---|---|---|")
        for r in res["flicker"]:
            name = f"**{r['method']}**" if r["kind"] == "student" else r["method"]
            L.append(f"| {name} | {r['flicker']:.3f} | {r['flicker_max_pair']:.3f} |")
        L.append("")
        for g in res["flicker_goal"]:
            L.append(f"- goal, {g['model']} below {g['teacher']} ({g['teacher_flicker']:.3f}) at "
                     f"every t: {'met' if g['ok'] else 'NOT met'} ("
                     + ", ".join(f"t={t}: {v:.3f}" for t, v in g["student"].items()) + ")")
        L.append("")
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def parse_models(specs):
    out = []
    for s in specs or [DEFAULT_MODEL]:
        name, path = s.split("=", 1) if "=" in s else (
            os.path.basename(s).replace(".safetensors", ""), s)
        if not os.path.isfile(path):
            raise SystemExit(f"model {path} not found")
        out.append((name, path))
    return out


def floats(s):
    return [float(v) for v in s.split(",") if v.strip()]


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--hr", help="folder of HR images (degraded with --degradation)")
    src.add_argument("--lr", help="folder of LR images (no reference)")
    src.add_argument("--val", choices=("realesrgan", "mild"),
                     help="the manifest's validation set with this degradation (data.py)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--degradation", default="realesrgan", choices=("realesrgan", "mild"),
                    help="--hr: degrade.py preset (default realesrgan, the harsh one)")
    ap.add_argument("--seed", type=int, default=0, help="--hr: base seed of the degradation")
    ap.add_argument("--hr-downscale", type=float, default=1.0,
                    help="--hr: resize the HR files first (data.hr_from_file), e.g. 0.5")
    ap.add_argument("--crop-lr", type=int, default=96,
                    help="centre crop, LR pixels (default 96: 192 px outputs, 4 NIQE patches "
                         "each); 0 = whole images")
    ap.add_argument("--max-images", type=int, default=0, help="the first N images only")
    ap.add_argument("--model", action="append",
                    help="NAME=FILE or FILE (repeatable; default models/ctsr-x2.safetensors)")
    ap.add_argument("--timesteps", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--teachers", default=DEFAULT_TEACHERS,
                    help=f"comma-separated teachers.TEACHERS names, 'all' or 'none' "
                         f"(default {DEFAULT_TEACHERS})")
    ap.add_argument("--alphas", default="0.25,0.5,0.75", help="blend weights of the realness "
                    "teacher ('' for none)")
    ap.add_argument("--build-dir", default=os.environ.get("CTSR_BUILD_DIR", "build"),
                    help="build directory whose gst/ plugin to use (default $CTSR_BUILD_DIR or "
                         "build, relative to the repository root)")
    ap.add_argument("--installed", action="store_true", help="use the installed element")
    ap.add_argument("--device", type=int, default=-1, help="the element's Vulkan device index")
    ap.add_argument("--min-agreement", type=float, default=50.0)
    ap.add_argument("--pan-frames", type=int, default=12, help="0 skips the temporal test")
    ap.add_argument("--pan-lr", type=int, default=64, help="LR frame edge of the pan clip")
    ap.add_argument("--pan-step", default="1,3", help="DY,DX HR pixels per frame")
    ap.add_argument("--pan-margin", type=int, default=16, help="output pixels left out at "
                    "every frame border")
    ap.add_argument("--pan-timesteps", default="0,0.5,1")
    ap.add_argument("--pan-photo", help="the photo to pan across (default: image --pan-index)")
    ap.add_argument("--pan-index", type=int, default=0)
    ap.add_argument("--pan-degradation", default="none", choices=("none", "realesrgan", "mild"))
    ap.add_argument("--grid", default="3", help="grid rows: a count (spread over the set) or "
                    "comma-separated image indices; 0 = no grid")
    ap.add_argument("--grid-crop", type=int, default=64, help="output pixels per tile edge")
    ap.add_argument("--grid-zoom", type=int, default=2)
    ap.add_argument("--grid-diff-gain", type=float, default=16.0,
                    help="gain of the (t=1) - (t=0) column, shown around mid-grey (0 leaves it "
                         "out)")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="teacher output cache")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--manifest", default=None)
    ap.add_argument("--shared-root", default=None)
    ap.add_argument("--system-root", default=None)
    ap.add_argument("--save-outputs", action="store_true",
                    help="also write every output (and the LR inputs) as PNG: "
                         "OUT/outputs/<method>/<image>.png")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def command_line(argv):
    """The command as the docs show it: paths made relative to the repository root."""
    out = []
    for v in argv:
        if os.path.isabs(v) and os.path.exists(v):
            v = rel(v)
        elif "=" in v and os.path.isabs(v.split("=", 1)[1]):
            k, p = v.split("=", 1)
            v = f"{k}={rel(p)}"
        out.append(v)
    return "/usr/bin/python3 training/ctsr_eval.py " + " ".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = build_parser().parse_args(argv)
    t_start = time.time()
    if not os.path.isabs(a.build_dir):
        a.build_dir = os.path.join(REPO, a.build_dir)
    try:
        ginfo = gst_setup(a.build_dir, a.installed)
    except ElementError as e:
        print(f"ctsr-eval: {e}", file=sys.stderr)
        return 2
    import torch
    from tqdm import tqdm
    import data
    from ctsr.export import load_student
    from teachers import TEACHERS
    torch.set_num_threads(a.threads)
    if a.manifest is None:
        a.manifest = data.DEFAULT_MANIFEST
    quiet = a.no_progress

    def bar(it, desc, total=None):
        return tqdm(it, desc=desc, total=total, disable=quiet, leave=False, file=sys.stderr)

    def log(msg):
        print(f"ctsr-eval: {msg}", file=sys.stderr, flush=True)

    models = parse_models(a.model)
    ts = sorted(set(floats(a.timesteps)) | set(GRID_TS))
    pan_ts = floats(a.pan_timesteps)
    tnames = (sorted(TEACHERS) if a.teachers == "all" else
              [] if a.teachers in ("", "none") else a.teachers.split(","))
    for n in tnames:
        if n not in TEACHERS:
            raise SystemExit(f"unknown teacher {n!r}; one of {sorted(TEACHERS)}")
    alphas = floats(a.alphas)
    os.makedirs(a.out, exist_ok=True)
    secs = {}

    t0 = time.time()
    items, sources = load_inputs(a)
    names = [n for n, _, _ in items]
    hrs = [h for _, h, _ in items]
    lrs = [lr for _, _, lr in items]
    has_hr = hrs[0] is not None
    small = [n for n, x in zip(names, lrs) if min(x.shape[:2]) < 48]
    if small:
        raise SystemExit(f"{small[0]}: LR {lrs[names.index(small[0])].shape[1]}x"
                         f"{lrs[names.index(small[0])].shape[0]}; NIQE needs outputs of at least "
                         "96x96, so LR images (and --crop-lr) of at least 48 px")
    lr_mp = sum(x.shape[0] * x.shape[1] for x in lrs) / 1e6
    secs["inputs"] = time.time() - t0
    log(f"{len(items)} images, LR {lrs[0].shape[1]}x{lrs[0].shape[0]}"
        f"{' (sizes vary)' if len({x.shape for x in lrs}) > 1 else ''}, {'with' if has_hr else 'no'} HR")

    outputs = {}   # method -> list of outputs
    meta = {}      # method -> row fields
    import baseline
    t0 = time.time()
    outputs["bicubic"] = [baseline.bicubic_x2(lr) for lr in lrs]
    meta["bicubic"] = dict(kind="bicubic", seconds=time.time() - t0)

    cache = TeacherCache(a.cache)
    t0 = time.time()
    for n in tnames:
        outputs[n] = [cache.get(n, lr) for lr in bar(lrs, n)]
        meta[n] = dict(kind="teacher", role=TEACHERS[n], seconds=cache.seconds.get(n))
    secs["teachers"] = time.time() - t0

    # the element, and the PyTorch student for the agreement
    agreement, agree_img, element_info = [], {}, {}
    t0 = time.time()
    for mname, mpath in models:
        try:
            el = Element(mpath, a.device)
        except ElementError as e:
            print(f"ctsr-eval: {e}", file=sys.stderr)
            return 2
        element_info = dict(source=ginfo["source"], plugin=plugin_name(ginfo["plugin"]),
                            gstreamer=ginfo["gstreamer"], device=el.device_name)
        if el.scale != 2:
            raise SystemExit(f"{mpath}: scale {el.scale}, ctsr-eval compares x2 methods")
        student = load_student(mpath)
        meta_t = {}
        for t in ts:
            meth = f"{mname} t={t:g}"
            outs, dbs, mad = [], [], 0
            te = 0.0
            for lr in bar(lrs, f"element {meth}"):
                t1 = time.time()
                o = el.upscale(lr, t)
                te += time.time() - t1
                ref = torch_student(student, lr, t)
                outs.append(o)
                dbs.append(agreement_db(o, ref))
                mad = max(mad, int(np.abs(o.astype(np.int16) - ref.astype(np.int16)).max()))
            outputs[meth] = outs
            meta[meth] = dict(kind="student", model=mname, t=t, seconds=te)
            agree_img[meth] = dbs
            finite = [d for d in dbs if not math.isinf(d)]
            agreement.append(dict(model=mname, t=t, n_images=len(dbs), min_db=min(dbs),
                                  mean_db=float(np.mean(finite)) if finite else math.inf,
                                  max_abs_diff=mad, ok=min(dbs) >= a.min_agreement))
            meta_t[t] = meth
        el.close()
        log(f"{mname}: agreement with PyTorch, lowest " +
            ", ".join(f"t={r['t']:g} {fmt(r['min_db'])} dB" for r in agreement
                      if r["model"] == mname))
    secs["element"] = time.time() - t0

    # scores
    t0 = time.time()
    summary, per_image = [], []
    scores = {}
    if has_hr:
        per, mean = score_images(hrs, hrs)
        mean.update(psnr=None, ssim=None)
        summary.append(dict(method="ground truth (HR)", kind="truth", n_images=len(hrs), **mean))
    order = ["bicubic"] + tnames
    for m in bar(order, "scores"):
        per, mean = score_images(outputs[m], hrs)
        scores[m] = mean
        for n, r in zip(names, per):
            per_image.append(dict(method=m, image=n, **r))
        row = dict(method=m, n_images=len(lrs), **meta[m], **mean)
        if row.get("seconds") is not None:
            row["s_per_lr_mp"] = row["seconds"] / lr_mp
        summary.append(row)
    fid = [n for n in tnames if TEACHERS[n] == "fidelity"]
    real = [n for n in tnames if TEACHERS[n] == "realness"]
    blend_of = None
    if fid and real and alphas:
        bf = max(fid, key=lambda n: scores[n]["psnr"]) if has_hr else fid[0]
        br = min(real, key=lambda n: scores[n]["niqe_set"])
        blend_of = (bf, br)
        for al in alphas:
            m = f"blend {al:g} ({1 - al:g} {bf} + {al:g} {br})"
            outputs[m] = [blend(f, r, al) for f, r in zip(outputs[bf], outputs[br])]
            per, mean = score_images(outputs[m], hrs)
            for n, r in zip(names, per):
                per_image.append(dict(method=m, image=n, **r))
            summary.append(dict(method=m, kind="blend", alpha=al, n_images=len(lrs), **mean))
    for m in bar([k for k in outputs if meta.get(k, {}).get("kind") == "student"], "scores"):
        per, mean = score_images(outputs[m], hrs)
        for n, r, d in zip(names, per, agree_img[m]):
            per_image.append(dict(method=m, image=n, agreement_db=d, **r))
        row = dict(method=m, n_images=len(lrs), **meta[m], **mean)
        row["s_per_lr_mp"] = row["seconds"] / lr_mp
        summary.append(row)
    secs["scores"] = time.time() - t0

    if a.save_outputs:
        from PIL import Image
        for m, outs in [("lr", lrs)] + list(outputs.items()):
            d = os.path.join(a.out, "outputs", safe_name(m))
            os.makedirs(d, exist_ok=True)
            for n, o in zip(names, outs):
                Image.fromarray(o).save(os.path.join(d, safe_name(os.path.splitext(n)[0]) + ".png"))

    # temporal stability
    frows, goals, pan = [], [], None
    if a.pan_frames:
        t0 = time.time()
        if a.pan_photo:
            from PIL import Image
            scene = np.asarray(Image.open(a.pan_photo).convert("RGB"))
            photo = os.path.basename(a.pan_photo)
        else:
            scene = sources[a.pan_index]()
            photo = names[a.pan_index]
        step = tuple(int(v) for v in a.pan_step.split(","))
        plrs, phrs, origins = pan_clip(scene, a.pan_lr, a.pan_frames, step,
                                       a.pan_degradation, a.seed)
        pan = dict(photo=photo, frames=a.pan_frames, lr_size=a.pan_lr, step=list(step),
                   margin=a.pan_margin, lr_frames="antialiased bicubic x0.5 of the HR windows"
                   if a.pan_degradation == "none" else f"degraded ({a.pan_degradation})")

        def frow(method, kind, frames, **kw):
            f = flicker(frames, origins, a.pan_margin)
            frows.append(dict(method=method, kind=kind, flicker=f["mean"],
                              flicker_max_pair=f["max"], n_pairs=len(f["pairs"]),
                              pairs=f["pairs"], **kw))
            return f["mean"]

        frow("ground truth (HR windows)", "truth", phrs)
        frow("bicubic", "bicubic", [baseline.bicubic_x2(x) for x in plrs])
        pouts = {}
        for n in tnames:
            pouts[n] = [cache.get(n, x) for x in bar(plrs, f"pan {n}")]
            frow(n, "teacher", pouts[n], role=TEACHERS[n])
        if blend_of:
            al = 0.5 if 0.5 in alphas else alphas[len(alphas) // 2]
            frow(f"blend {al:g}", "blend",
                 [blend(f, r, al) for f, r in zip(pouts[blend_of[0]], pouts[blend_of[1]])])
        for mname, mpath in models:
            el = Element(mpath, a.device)
            sflick = {}
            for t in pan_ts:
                fr = [el.upscale(x, t) for x in bar(plrs, f"pan {mname} t={t:g}")]
                sflick[f"{t:g}"] = frow(f"{mname} t={t:g}", "student", fr, model=mname, t=t)
            el.close()
            for n in real:
                tf = next(r["flicker"] for r in frows if r["method"] == n)
                goals.append(dict(model=mname, teacher=n, teacher_flicker=tf, student=sflick,
                                  ok=all(v < tf for v in sflick.values())))
        secs["pan"] = time.time() - t0

    # figures
    t0 = time.time()
    src_desc = (f"the validation set of training/data.py, {a.val} degradation" if a.val else
                f"{rel(a.hr)}, {a.degradation} degradation (seed {a.seed})" if a.hr else
                f"{rel(a.lr)} (LR only)")
    plot_tradeoff(os.path.join(a.out, "tradeoff.png"), summary,
                  f"x2 through ctsrupscale: {len(lrs)} images, LR "
                  f"{lrs[0].shape[1]}x{lrs[0].shape[0]}, "
                  + (f"{a.val} validation set" if a.val else
                     f"{a.degradation} degradation" if a.hr else "LR only"), has_hr)
    grid_rows = []
    if a.grid != "0":
        if "," in a.grid:
            grid_rows = [int(v) for v in a.grid.split(",")]
        else:
            k = min(int(a.grid), len(lrs))
            grid_rows = sorted({int(round(v)) for v in np.linspace(0, len(lrs) - 1, k)})
        m0 = models[0][0]
        cols = [("LR (nearest)", [lrs[i] for i in grid_rows]),
                ("bicubic", [outputs["bicubic"][i] for i in grid_rows])]
        cols += [(n, [outputs[n][i] for i in grid_rows]) for n in tnames]
        cols += [(f"{m0} t={t:g}", [outputs[f"{m0} t={t:g}"][i] for i in grid_rows])
                 for t in GRID_TS]
        if a.grid_diff_gain:
            d = [np.clip(128 + np.round((outputs[f"{m0} t=1"][i].astype(np.float64)
                                         - outputs[f"{m0} t=0"][i]) * a.grid_diff_gain), 0, 255)
                 .astype(np.uint8) for i in grid_rows]
            cols.append((f"(t=1) - (t=0), x{a.grid_diff_gain:g}", d))
        if has_hr:
            cols.append(("HR", [hrs[i] for i in grid_rows]))
        else:
            # the crop is placed by the last column: put bicubic last for a reference
            cols.append(("bicubic", [outputs["bicubic"][i] for i in grid_rows]))
            del cols[1]
        plot_grid(os.path.join(a.out, "grid.png"), cols, a.grid_crop, a.grid_zoom)
    if frows:
        plot_flicker(os.path.join(a.out, "flicker.png"), frows,
                     f"pan over {os.path.basename(photo)[:20]}: {a.pan_frames} frames, "
                     f"{a.pan_lr} px LR, {step[1]} right + {step[0]} down HR px/frame")
    secs["figures"] = time.time() - t0
    secs["total"] = time.time() - t_start

    res = dict(
        command=command_line(argv), seconds=secs, has_hr=has_hr, n_images=len(lrs),
        images=names, element=element_info,
        models={n: rel(p) for n, p in models},
        config=dict(input=src_desc, lr_size=f"{lrs[0].shape[1]}x{lrs[0].shape[0]}",
                    crop_lr=a.crop_lr, timesteps=ts, teachers=tnames, alphas=alphas,
                    blend_of=blend_of, min_agreement=a.min_agreement, threads=a.threads,
                    grid_rows=[names[i] for i in grid_rows]),
        teacher_cache=dict(hits=cache.hits, misses=cache.misses),
        summary=summary, agreement=agreement, pan=pan,
        flicker=[{k: v for k, v in r.items()} for r in frows], flicker_goal=goals,
        per_image=per_image)
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    write_csv(os.path.join(a.out, "summary.csv"), summary, SUMMARY_COLS)
    write_csv(os.path.join(a.out, "per_image.csv"), per_image, PER_IMAGE_COLS)
    write_csv(os.path.join(a.out, "agreement.csv"), agreement, AGREEMENT_COLS)
    if frows:
        write_csv(os.path.join(a.out, "flicker.csv"), frows, FLICKER_COLS)
    md = markdown(res)
    with open(os.path.join(a.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)
    log(f"done in {secs['total']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in secs.items() if k != 'total')}); "
        f"teacher cache: {cache.hits} hits, {cache.misses} computed; wrote {rel(a.out)}/")
    bad = [r for r in agreement if not r["ok"]]
    if bad:
        log("agreement below the bound: " + "; ".join(
            f"{r['model']} t={r['t']:g} {fmt(r['min_db'])} dB" for r in bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
