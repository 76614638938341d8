"""training/evaluate.py: the issue's targets are checked as stated (synthetic rows)."""
import evaluate as E


def row(method, psnr, niqe_set, role=None):
    r = dict(method=method, psnr=psnr, niqe_set=niqe_set, ssim=0.5, niqe=5.0, brisque=30.0)
    if role:
        r["role"] = role
    return r


BASE = dict(rows=[row("bicubic", 25.0, 6.0), row("waifu2x-noise3", 25.5, 6.2, "fidelity"),
                  row("realesrgan-x4plus", 25.5, 3.0, "realness"),
                  row("blend 0.5: x", 26.0, 3.5)])


def curve(points):
    return [dict(t=i / (len(points) - 1), psnr=p, niqe_set=n) for i, (p, n) in enumerate(points)]


def test_all_targets_met():
    c = E.check_targets(curve([(26.2, 5.0), (26.1, 3.4), (25.6, 2.9)]), BASE)
    assert c["t0_psnr_vs_best_fidelity"]["ok"] and c["t0_psnr_vs_blends"]["ok"]
    assert c["t1_niqe_vs_realness"]["ok"] and c["monotone"]["ok"]
    assert c["dominance"]["blend 0.5: x"] == dict(dominated_at=[0.5], ok=True)
    assert abs(c["t0_vs_bicubic"]["gap"] - 1.2) < 1e-9


def test_targets_missed_are_reported_with_gaps():
    c = E.check_targets(curve([(25.8, 5.0), (25.9, 4.0), (25.7, 3.2)]), BASE)
    assert not c["t0_psnr_vs_best_fidelity"]["ok"]
    assert abs(c["t0_psnr_vs_best_fidelity"]["gap"] - (25.8 - 26.0)) < 1e-9
    assert not c["t0_psnr_vs_blends"]["ok"] and not c["t1_niqe_vs_realness"]["ok"]
    assert c["monotone"]["psnr_rises"] == 1 and not c["monotone"]["ok"]
    assert c["dominance"]["blend 0.5: x"]["ok"] is False
