"""Metrics against closed forms and reference implementations; Result files."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
from scipy import stats

import invprior as ip
from invprior.result import Diagnostics, Result


def test_psnr_closed_form():
    x = torch.zeros(2, 1, 8, 8)
    assert ip.eval.psnr(x + 0.1, x) == pytest.approx(20.0)
    per = ip.eval.psnr(torch.cat([x[:1] + 0.1, x[:1] + 0.01]), x, reduction="none")
    torch.testing.assert_close(per, torch.tensor([20.0, 40.0], dtype=torch.float64))


def test_ssim_matches_the_paper_settings_of_skimage():
    from skimage.metrics import structural_similarity

    x = ip.data.image("camera", 64).double()
    noisy = (x + 0.1 * torch.randn_like(x, dtype=torch.float64)).clamp(0, 1)
    ref = structural_similarity(
        noisy[0, 0].numpy(),
        x[0, 0].numpy(),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ip.eval.ssim(noisy, x) == pytest.approx(ref)
    assert ip.eval.ssim(x, x) == pytest.approx(1.0)
    assert 0 < ip.eval.ssim(noisy, x) < 0.9
    small = torch.rand(1, 1, 8, 8)
    assert ip.eval.ssim(small, small) == pytest.approx(1.0)


def test_sliced_wasserstein_in_1d_is_w1():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 1, generator=g), 0.5 + 2 * torch.randn(500, 1, generator=g)
    ref = stats.wasserstein_distance(a[:, 0].numpy(), b[:, 0].numpy())
    assert ip.eval.sliced_wasserstein(a, b, n_projections=3) == pytest.approx(ref, rel=1e-6)


def test_sliced_wasserstein_of_a_translation():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 3, generator=g)
    t = torch.tensor([3.0, 0.0, 0.0])
    sw = ip.eval.sliced_wasserstein(a, a + t, n_projections=100, seed=1)
    # E|u . t| for u uniform on the sphere S^2 is |t| / 2, up to the 100-direction Monte Carlo error
    assert sw == pytest.approx(1.5, rel=0.15)
    assert ip.eval.sliced_wasserstein(a, a, seed=1) == 0.0


def test_coverage_is_calibrated_for_exact_samples():
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(2000, 4000, generator=g)
    truth = torch.randn(4000, generator=g)
    assert ip.eval.coverage(samples, truth, 0.9) == pytest.approx(0.9, abs=0.02)
    assert ip.eval.coverage(0.1 * samples, truth, 0.9) < 0.2


def test_result_save_and_load_round_trip(tmp_path):
    samples = torch.rand(5, 1, 1, 8, 8)
    r = Result.from_samples(samples, Diagnostics(nfe=3, chi2=[1.01], loss_trace=[3.0, 2.0]), method="exact")
    folder = r.save(tmp_path / "run")
    names = set(os.listdir(folder))
    assert {"mean.png", "std.png", "mean.npy", "std.npy", "samples.npy", "summary.json", "sample_0.png"} <= names
    back = Result.load(folder)
    torch.testing.assert_close(back.mean, r.mean)
    torch.testing.assert_close(back.std, r.std)
    assert back.diagnostics.nfe == 3 and back.method == "exact"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["diagnostics"]["loss_trace"] == [3.0, 2.0]


def test_result_save_replaces_atomically(tmp_path):
    a = Result.from_point(torch.zeros(1, 1, 4, 4))
    b = Result.from_point(torch.ones(1, 1, 4, 4))
    a.save(tmp_path / "run")
    b.save(tmp_path / "run")
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no temporary or backup folders left
    assert float(Result.load(tmp_path / "run").mean.mean()) == 1.0
    assert "std.npy" not in os.listdir(tmp_path / "run")  # a point estimate claims no uncertainty


def test_result_save_failure_leaves_the_old_folder(tmp_path, monkeypatch):
    Result.from_point(torch.zeros(1, 1, 4, 4)).save(tmp_path / "run")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(RuntimeError):
        Result.from_point(torch.ones(1, 1, 4, 4)).save(tmp_path / "run")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert float(Result.load(tmp_path / "run").mean.mean()) == 0.0


def test_result_load_refuses_pickles(tmp_path):
    folder = tmp_path / "run"
    Result.from_point(torch.zeros(1, 1, 4, 4)).save(folder)
    np.save(folder / "mean.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ip.InvpriorError, match="not a readable result"):
        Result.load(folder)


def test_vector_results_save_without_pngs(tmp_path):
    r = Result.from_samples(torch.randn(10, 2, 6))
    folder = r.save(tmp_path / "v")
    assert not any(n.endswith(".png") for n in os.listdir(folder))
    assert math.isfinite(float(Result.load(folder).std.sum()))


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        ip.data.restricted_unpickle(pickle.dumps(Evil()))
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(ip.data.restricted_unpickle(pickle.dumps(arr)), arr)
    with pytest.raises(pickle.UnpicklingError):
        ip.data.restricted_unpickle(pickle.dumps({"a": 1}))
