"""training/cache.py: a tiny cache (2 patches of 32x32 LR) builds with stub teachers, resumes
without recomputing, grows, refuses another config, and follows the documented format."""
import json
import os

import numpy as np
import pytest

import cache as C
import data as D

pytestmark = pytest.mark.usefixtures("one_thread")

SHARED = os.environ.get("CTSR_SHARED_ROOT", D.DEFAULT_SHARED_ROOT)
SYSTEM = os.environ.get("CTSR_SYSTEM_ROOT", D.DEFAULT_SYSTEM_ROOT)


class Stub:
    """Counts calls per teacher; x2 = nearest upsampling (+ 1 for the second teacher)."""

    def __init__(self):
        self.calls = {}

    def __call__(self, name, lr):
        self.calls[name] = self.calls.get(name, 0) + len(lr)
        y = lr.repeat(2, axis=1).repeat(2, axis=2)
        return y if name == "stub-a" else np.minimum(y, 254) + 1


def build(out, n, stub, **kw):
    return C.build(str(out), n, patch_lr=32, shard_size=1, teachers=["stub-a", "stub-b"],
                   seed=3, shared_root=SHARED, system_root=SYSTEM, teacher_fn=stub, **kw)


def test_tiny_cache_build_resume_format(tmp_path):
    out = tmp_path / "c"
    s1 = Stub()
    idx = build(out, 2, s1)
    assert s1.calls == {"stub-a": 2, "stub-b": 2}
    # format as documented
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk == idx and on_disk["format"] == C.FORMAT and on_disk["version"] == 1
    cfg = on_disk["config"]
    assert cfg["patch_lr"] == 32 and cfg["patch_hr"] == 64 and cfg["scale"] == 2
    assert cfg["teachers"] == ["stub-a", "stub-b"] and cfg["shard_size"] == 1
    assert sorted(on_disk["shards"]) == ["00000", "00001"]
    assert sorted(os.listdir(out)) == ["index.json", "shard_00000.npz", "shard_00001.npz"]
    man = D.load_manifest()
    for s, ent in sorted(on_disk["shards"].items()):
        assert ent["file"] == f"shard_{s}.npz" and ent["n"] == 1
        assert set(ent["seconds"]) == {"hr+lr", "stub-a", "stub-b"}
        z = np.load(out / ent["file"])
        assert set(z.files) == {"lr", "hr", "img", "yx", "seed", "mild", "x2_stub-a",
                                "x2_stub-b"}
        assert z["mild"].dtype == bool and not z["mild"].any()
        assert z["lr"].shape == (1, 32, 32, 3) and z["lr"].dtype == np.uint8
        for k in ("hr", "x2_stub-a", "x2_stub-b"):
            assert z[k].shape == (1, 64, 64, 3) and z[k].dtype == np.uint8
        assert np.array_equal(z["x2_stub-a"][0], z["lr"][0].repeat(2, 0).repeat(2, 1))
        e = man["images"][int(z["img"][0])]
        assert e["split"] == "train"
        # HR is the crop at yx; LR is degrade(HR, seed)
        y, x = z["yx"][0]
        hr_img = D.load_hr(e, SHARED, SYSTEM)
        assert np.array_equal(z["hr"][0], hr_img[y:y + 64, x:x + 64])
        assert int(z["seed"][0]) == 3 * 10 ** 7 + int(s)
        assert np.array_equal(z["lr"][0], D.make_lr(z["hr"][0], int(z["seed"][0])))
    # resume: nothing recomputed
    s2 = Stub()
    build(out, 2, s2)
    assert s2.calls == {}
    # a lost shard is rebuilt (identically), only that one
    before = np.load(out / "shard_00001.npz")["lr"]
    os.remove(out / "shard_00001.npz")
    s3 = Stub()
    build(out, 2, s3)
    assert s3.calls == {"stub-a": 1, "stub-b": 1}
    assert np.array_equal(np.load(out / "shard_00001.npz")["lr"], before)
    # grow
    s4 = Stub()
    build(out, 3, s4)
    assert s4.calls == {"stub-a": 1, "stub-b": 1}
    assert len(C.load(str(out))["lr"]) == 3
    assert "3 patches" in C.status(str(out))[0]
    # another config is refused
    with pytest.raises(SystemExit):
        C.build(str(out), 2, patch_lr=16, shard_size=1, teachers=["stub-a", "stub-b"], seed=3,
                shared_root=SHARED, system_root=SYSTEM, teacher_fn=Stub())
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_real_fast_teacher(tmp_path):
    """The default teacher function (teachers.teacher_x2) with waifu2x, 1 patch of 16x16 LR."""
    idx = C.build(str(tmp_path), 1, patch_lr=16, shard_size=1, teachers=["waifu2x-scale2"],
                  shared_root=SHARED, system_root=SYSTEM)
    z = np.load(tmp_path / idx["shards"]["00000"]["file"])
    y = z["x2_waifu2x-scale2"][0]
    assert y.shape == (32, 32, 3) and y.dtype == np.uint8
    # a reasonable x2 of the LR: close to the nearest upsampling in the mean
    up = z["lr"][0].repeat(2, 0).repeat(2, 1).astype(float)
    assert abs(y.astype(float).mean() - up.mean()) < 8


def test_mild_mix_and_durable_store(tmp_path):
    """--mild-every degrades every N-th patch with degrade.MILD; the store keeps a teacher's
    outputs (lossless) and a rebuild on a fresh machine takes them instead of running it."""
    import degrade
    first, store = tmp_path / "c1", tmp_path / "store"
    C.build(str(first), 2, patch_lr=32, shard_size=1, teachers=["stub-a", "realesrgan-x4plus"],
            seed=4, shared_root=SHARED, system_root=SYSTEM, teacher_fn=Stub(), mild_every=2)
    z = [np.load(first / f"shard_0000{s}.npz") for s in (0, 1)]
    assert [bool(x["mild"][0]) for x in z] == [True, False]
    assert np.array_equal(z[0]["lr"][0], D.make_lr(z[0]["hr"][0], int(z[0]["seed"][0]), degrade.MILD))
    C.export_store(str(first), str(store))
    assert sorted(os.listdir(store)) == ["index.json", "shard_00000_realesrgan-x4plus.png",
                                         "shard_00001_realesrgan-x4plus.png"]
    again = Stub()
    idx = C.build(str(tmp_path / "c2"), 2, patch_lr=32, shard_size=1,
                  teachers=["stub-a", "realesrgan-x4plus"], seed=4, shared_root=SHARED,
                  system_root=SYSTEM, teacher_fn=again, mild_every=2, store=str(store))
    assert again.calls == {"stub-a": 2}
    assert all(e["from_store"] == ["realesrgan-x4plus"] for e in idx["shards"].values())
    for s in (0, 1):
        b = np.load(tmp_path / "c2" / f"shard_0000{s}.npz")
        assert np.array_equal(b["x2_realesrgan-x4plus"], z[s]["x2_realesrgan-x4plus"])
    # a stale store entry (other LR) is not used
    sidx = json.loads((store / "index.json").read_text())
    sidx["shards"]["00001"] = "0" * 64
    (store / "index.json").write_text(json.dumps(sidx))
    third = Stub()
    C.build(str(tmp_path / "c3"), 2, patch_lr=32, shard_size=1,
            teachers=["stub-a", "realesrgan-x4plus"], seed=4, shared_root=SHARED,
            system_root=SYSTEM, teacher_fn=third, mild_every=2, store=str(store))
    assert third.calls == {"stub-a": 2, "realesrgan-x4plus": 1}
