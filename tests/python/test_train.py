"""training/train.py: exact resume after a stop, DDP (2 processes, gloo) ends with identical
weights on both ranks and the same weights as one process on the same global batch, export
carries the provenance. Runs the tiny student on a 4-patch cache built with stub teachers."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import cache as C
import data as D
import train
from ctsr import distill as Dl
from ctsr import safetensors_io

pytestmark = pytest.mark.usefixtures("one_thread")

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.join(HERE, "..", "..", "training")
SHARED = os.environ.get("CTSR_SHARED_ROOT", D.DEFAULT_SHARED_ROOT)
SYSTEM = os.environ.get("CTSR_SYSTEM_ROOT", D.DEFAULT_SYSTEM_ROOT)


def stub_teacher(name, lr):
    """Nearest x2, brightened by a per-teacher offset: cheap, deterministic, distinct."""
    off = (train.FIDELITY + train.REALNESS).index(name) * 3
    return np.minimum(lr.repeat(2, axis=1).repeat(2, axis=2).astype(int) + off, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stub_cache(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    C.build(str(out), 4, patch_lr=32, shard_size=2, teachers=list(train.FIDELITY + train.REALNESS),
            seed=5, shared_root=SHARED, system_root=SYSTEM, teacher_fn=stub_teacher, mild_every=2)
    return str(out)


def args(cache, workdir, *extra):
    return ["--config", "tiny", "--workdir", str(workdir), "--cache", cache, "--steps", "4",
            "--batch", "4", "--threads", "1", "--log-every", "1", "--val-every", "0",
            "--no-progress", "--ckpt-minutes", "100", *extra]


def log_rows(workdir):
    with open(os.path.join(workdir, "log.csv"), newline="") as f:
        return list(csv.reader(f))


def weights(workdir):
    ck = torch.load(os.path.join(workdir, "ckpt.pt"))
    return ck["step"], ck["model"], ck["ema"]


def test_resume_is_exact(stub_cache, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train.main(args(stub_cache, a)) == 0
    assert train.main(args(stub_cache, b, "--stop-at", "2")) == 0
    assert weights(b)[0] == 2
    # a stale row past the checkpoint (as after a kill) is dropped on resume
    with open(b / "log.csv", "a") as f:
        f.write("3,0,0,0,0,0,0,0,0,0\n")
    assert train.main(args(stub_cache, b)) == 0
    ra, rb = log_rows(a), log_rows(b)
    assert [r[0] for r in rb[1:]] == ["1", "2", "3", "4"]
    loss = ra[0].index("total")
    assert [r[loss] for r in ra[1:]] == [r[loss] for r in rb[1:]]
    sa, ma, ea = weights(a)
    sb, mb, eb = weights(b)
    assert sa == sb == 4
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
        assert torch.equal(ea[k], eb[k]), k
    # the loss really moved the weights
    first = train.build_model(train.CONFIGS["tiny"], 0.05, 0, 4.0).state_dict()
    assert any(not torch.equal(first[k], ma[k]) for k in ma)


def test_resume_after_a_kill(stub_cache, tmp_path):
    """A run killed with SIGKILL at an arbitrary step (checkpoints every step) and resumed
    logs the same losses and ends with the same weights as an uninterrupted run."""
    a, b = tmp_path / "a", tmp_path / "b"
    steps = ["--steps", "40"]
    assert train.main(args(stub_cache, a, *steps)) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=TRAINING)
    p = subprocess.Popen([sys.executable, os.path.join(TRAINING, "train.py"),
                          *args(stub_cache, b, *steps, "--ckpt-minutes", "0")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            if os.path.exists(b / "log.csv") and len(log_rows(b)) > 4:  # past step 3
                p.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = weights(b)[0]
    assert 3 <= killed_at < 40 and not (b / "done").exists()
    assert train.main(args(stub_cache, b, *steps)) == 0
    ra, rb = log_rows(a), log_rows(b)
    loss = ra[0].index("total")
    assert [r[0] for r in rb[1:]] == [str(i) for i in range(1, 41)]
    assert [r[loss] for r in ra[1:]] == [r[loss] for r in rb[1:]]
    _, ma, ea = weights(a)
    _, mb, eb = weights(b)
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
        assert torch.equal(ea[k], eb[k]), k


def test_grow_data_takes_new_shards(stub_cache, tmp_path, monkeypatch, capsys):
    """--grow-data: shards that appear during a run are loaded at the next checkpoint."""
    every = train.list_shards([stub_cache])
    assert len(every) == 2
    calls = []

    def growing(cache):
        calls.append(1)
        return every[:1] if len(calls) == 1 else every  # the second shard appears meanwhile
    monkeypatch.setattr(train, "list_shards", growing)
    w = tmp_path / "g"
    assert train.main(args(stub_cache, w, "--grow-data", "--ckpt-minutes", "0")) == 0
    assert "step 1: 4 patches now" in capsys.readouterr().out
    assert [list(x) for x in torch.load(w / "ckpt.pt")["shards"]] == [list(x) for x in every]


def test_ddp_two_processes_agree(stub_cache, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert train.main(args(stub_cache, one, "--steps", "3")) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=TRAINING)
    r = subprocess.run([sys.executable, "-m", "ctsr.torchrun", "--standalone",
                        "--nproc_per_node", "2", os.path.join(TRAINING, "train.py"),
                        *args(stub_cache, two, "--steps", "3")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ranks agree" in r.stdout, r.stdout + r.stderr
    # 2 ranks x 2 crops (x 2 timesteps) = the one-process batch of 4 crops: same weights
    _, m1, _ = weights(one)
    _, m2, _ = weights(two)
    # Adam divides each gradient by its own running magnitude: for the few weights whose
    # gradient is ~0, the different summation order of the all-reduce can flip an update of
    # up to lr x 10 (conditioning path) per step. Measured: 3 of 17,552 weights differ by more
    # than 1e-5 (at most 8e-5), the rest by under 1e-6. A rank training on the wrong slice
    # would move most weights.
    d = torch.cat([(m1[k] - m2[k]).abs().reshape(-1) for k in m1])
    assert float(d.max()) < 5e-4
    assert float((d > 1e-6).float().mean()) < 1e-3


def test_export_provenance(stub_cache, tmp_path):
    out = tmp_path / "m.safetensors"
    assert train.main(args(stub_cache, tmp_path / "w", "--steps", "2", "--val-every", "1",
                           "--val-images", "1", "--val-sets", "mild",
                           "--export", str(out))) == 0
    _, meta = safetensors_io.load(str(out))
    prov = json.loads(meta["provenance"])
    assert prov["steps"] == 2 and prov["loss"] == "ctsr" and prov["patches"] == 4
    assert prov["manifest_sha256"] == train.file_sha256(D.DEFAULT_MANIFEST)
    assert len(prov["commit"]) == 40 or prov["commit"] == "unknown"
    assert set(prov["validation"]) == {"mild_t0", "mild_t0.5", "mild_t1"}
    assert json.loads(meta["config"])["channels"] == train.CONFIGS["tiny"]["channels"]


def test_l1_pretraining_then_init(stub_cache, tmp_path):
    """--loss l1 trains at t = 0 on each crop once; --init starts a CTSR run from its EMA
    weights, and a config mismatch is refused."""
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    # a large step so that the pre-trained weights are far from a fresh initialisation
    assert train.main(args(stub_cache, pre, "--loss", "l1", "--lr", "1e-2", "--warmup", "1")) == 0
    rows = log_rows(pre)
    assert rows[0][4:] == ["fid", "total"] and len(rows) == 5
    b = train.make_batch(train.load_data(train.list_shards([stub_cache])), 0,
                         train.parse(args(stub_cache, pre, "--loss", "l1")))
    assert b["lr"].shape[0] == 4 and b["pair"] is None and not b["t"].any()
    init = torch.load(os.path.join(pre, "ckpt.pt"))["ema"]
    fresh = train.build_model(train.CONFIGS["tiny"], 0.05, 0, 4.0).state_dict()
    assert max(float((fresh[k] - init[k]).abs().max()) for k in init) > 1e-2
    # one warm-up step (lr 5e-6) from the pre-trained weights stays next to them
    assert train.main(args(stub_cache, ft, "--init", str(pre / "ckpt.pt"), "--stop-at", "1")) == 0
    _, model, ema = weights(ft)
    for w in (model, ema):
        assert max(float((w[k] - init[k]).abs().max()) for k in init) < 1e-4
    # the export names the run it started from
    out = tmp_path / "ft.safetensors"
    assert train.main(args(stub_cache, ft, "--init", str(pre / "ckpt.pt"), "--stop-at", "1",
                           "--export", str(out))) == 0
    prov = json.loads(safetensors_io.load(str(out))[1]["provenance"])
    assert prov["init"] == dict(checkpoint=str(pre / "ckpt.pt"), steps=4, loss="l1")
    with pytest.raises(SystemExit, match="config differs"):
        train.main(["--config", "default"] + args(stub_cache, tmp_path / "bad", "--init",
                                                  str(pre / "ckpt.pt"))[2:])


def test_mild_share(stub_cache, tmp_path):
    """--mild-share p draws each crop from a mild patch with probability p."""
    D = train.load_data(train.list_shards([stub_cache]))
    assert D["mild"].any() and not D["mild"].all()
    for share, want in (("1", True), ("0.001", False)):
        a = train.parse(args(stub_cache, tmp_path, "--mild-share", share, "--batch", "16"))
        for step in range(3):
            idx = train.make_batch(D, step, a)["idx"]
            assert all(bool(D["mild"][int(i)]) == want for i in idx)


def test_l1_on_truth_only_cache(tmp_path):
    """A cache built with no teachers (cache.py --teachers '') feeds the l1 stage; the CTSR
    loss, which needs the teachers, refuses it by name."""
    out = tmp_path / "truth"
    C.build(str(out), 4, patch_lr=32, shard_size=2, teachers=[], seed=6, shared_root=SHARED,
            system_root=SYSTEM, mild_every=2)
    with np.load(out / "shard_00000.npz") as z:
        assert sorted(k for k in z.files if k.startswith("x2_")) == []
    D = train.load_data(train.list_shards([str(out)]), (), ())
    assert D["fid"].shape[0] == 0 and D["real"].shape[0] == 0 and D["n"] == 4
    for loss in ("l1", "l2"):  # both pre-training losses: each crop once at t = 0, no teacher
        assert train.main(args(str(out), tmp_path / loss, "--loss", loss)) == 0
        assert len(log_rows(tmp_path / loss)) == 5
    with pytest.raises(SystemExit, match="cache lacks teachers"):
        train.main(args(str(out), tmp_path / "ctsr"))


def test_eq_crops_are_the_same_scene_moved(stub_cache, tmp_path):
    """--w-eq: each pair is one HR crop halved at offset 0 and moved by an odd shift; without
    noise and away from the borders the two LR crops hold the same scene half an LR pixel
    apart, so an equivariant upscaler (bicubic) scores a small L_eq and a frozen output a large
    one. The term leaves the main batch's draws unchanged, is logged, and resumes exactly."""
    D = train.load_data(train.list_shards([stub_cache]))
    a0 = train.parse(args(stub_cache, tmp_path, "--crop", "24"))
    a = train.parse(args(stub_cache, tmp_path, "--crop", "24", "--w-eq", "1", "--eq-batch", "3",
                         "--eq-noise", "0"))
    b0, b = train.make_batch(D, 7, a0), train.make_batch(D, 7, a)
    assert b0["eq"] is None
    for k in ("lr", "hr", "t"):
        assert torch.equal(b0[k], b[k]), k
    eq = b["eq"]
    assert eq["lr"].shape == (6, 3, 24, 24) and eq["t"].shape == (6,)
    assert torch.equal(eq["t"][:3], eq["t"][3:])
    assert all(s in train.EQ_SHIFTS for s in eq["shifts"])
    up = torch.nn.functional.interpolate(eq["lr"], scale_factor=2, mode="bicubic",
                                         align_corners=False)
    moved = Dl.shift_consistency(up[:3], up[3:], eq["shifts"], margin=6)
    frozen = Dl.shift_consistency(up[:3], up[:3], eq["shifts"], margin=6)
    assert bool((moved < 0.5 * frozen).all()), (moved, frozen)
    # the term in a run: logged, and a resumed run takes the same steps
    r1, r2 = tmp_path / "eq1", tmp_path / "eq2"
    extra = ("--crop", "24", "--w-eq", "1", "--eq-batch", "2")
    assert train.main(args(stub_cache, r1, *extra)) == 0
    assert train.main(args(stub_cache, r2, *extra, "--stop-at", "2")) == 0
    assert train.main(args(stub_cache, r2, *extra)) == 0
    ra, rb = log_rows(r1), log_rows(r2)
    assert "eq" in ra[0] and float(ra[1][ra[0].index("eq")]) > 0
    assert [r[ra[0].index("total")] for r in ra[1:]] == [r[rb[0].index("total")] for r in rb[1:]]
    with pytest.raises(SystemExit, match="--w-eq needs --crop"):
        train.make_batch(D, 0, train.parse(args(stub_cache, tmp_path, "--w-eq", "1")))
