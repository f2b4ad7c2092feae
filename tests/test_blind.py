"""Blind deblurring: blind_dps, blind_reddiff and blind_tv against their non-blind counterparts, the
kernel tools (random kernels, simplex projection, kernel error) and bad input."""

from __future__ import annotations

import pytest
import torch

import invprior as ip
from invprior.data import GaussianMixture
from invprior.operators import Blur
from invprior.operators.kernels import (
    check_kernel,
    gaussian_kernel,
    kernel_error,
    project_simplex,
    random_kernels,
)
from invprior.priors import Diffusion


def _setup():
    g = torch.Generator().manual_seed(0)
    shape = (1, 1, 8, 8)
    gm = GaussianMixture(torch.ones(2), torch.rand(2, 64, generator=g, dtype=torch.float64), 0.05, shape=shape[1:])
    prior = Diffusion.from_denoiser(gm, 0.002, 20.0)
    k = gaussian_kernel(torch.tensor([[1.5, 0.3], [0.3, 0.8]], dtype=torch.float64), 5)
    x = gm.sample(2, seed=1, dtype=torch.float64).clamp(0, 1)
    return prior, k, ip.simulate(Blur((2, 1, 8, 8), k), x, 0.02, seed=2)


def test_given_the_true_kernel_blind_dps_is_dps():
    prior, k, problem = _setup()
    blind = ip.solve(problem, prior, method="blind_dps", fixed_kernel=k, steps=30, n_samples=4, seed=3)
    dps = ip.solve(problem, prior, method="dps", steps=30, n_samples=4, seed=3)
    torch.testing.assert_close(blind.samples, dps.samples)
    torch.testing.assert_close(blind.diagnostics.extra["kernel"][0], k)


def test_given_the_true_kernel_blind_reddiff_is_reddiff_and_blind_tv_is_pdhg():
    prior, k, problem = _setup()
    blind = ip.solve(problem, prior, method="blind_reddiff", fixed_kernel=k, steps=20, n_samples=3, seed=3)
    red = ip.solve(problem, prior, method="reddiff", steps=20, n_samples=3, seed=3)
    torch.testing.assert_close(blind.samples, red.samples)
    tv = ip.priors.TV(0.1)
    blind = ip.solve(problem, tv, method="blind_tv", fixed_kernel=k, steps=50)
    torch.testing.assert_close(blind.mean, ip.solve(problem, tv, method="pdhg", steps=50).mean)


def test_blind_dps_returns_normalised_kernels_and_their_fit():
    prior, _, problem = _setup()
    for kind in ("gaussian", "motion"):
        r = ip.solve(problem, prior, method="blind_dps", kernel=kind, steps=60, n_samples=4, seed=0)
        est = r.diagnostics.extra["kernels"]
        assert est.shape == (4, 2, 5, 5) and float(est.min()) >= 0
        torch.testing.assert_close(est.sum((-1, -2)), torch.ones(4, 2, dtype=torch.float64))
        assert bool(torch.isfinite(r.samples).all()) and len(r.diagnostics.extra["fit_chi2"]) == 2
        torch.testing.assert_close(r.diagnostics.extra["kernel"], est.mean(0))


def test_blind_methods_refuse_other_operators_and_bad_kernels():
    prior, k, problem = _setup()
    inpaint = ip.simulate(ip.operators.Inpainting.random((2, 1, 8, 8), 0.5, seed=0), problem.truth, 0.02, seed=0)
    with pytest.raises(ip.InvpriorError, match="is not a blur"):
        ip.solve(inpaint, prior, method="blind_dps")
    negative = k.clone()
    negative[0, 0] -= 0.05
    negative[2, 2] += 0.05  # still sums to 1
    for method in ("blind_dps", "blind_reddiff"):
        with pytest.raises(ip.InvpriorError, match="must sum to 1"):
            ip.solve(problem, prior, method=method, fixed_kernel=2 * k)
        with pytest.raises(ip.InvpriorError, match="must be non-negative"):
            ip.solve(problem, prior, method=method, fixed_kernel=negative)
        with pytest.raises(ip.InvpriorError, match="larger than the 8-pixel image side"):
            ip.solve(problem, prior, method=method, kernel_size=9)
        with pytest.raises(ip.InvpriorError, match="kernel_size must be odd"):
            ip.solve(problem, prior, method=method, kernel_size=4)
        with pytest.raises(ip.InvpriorError, match="kernel must be one of"):
            ip.solve(problem, prior, method=method, kernel="box")
        with pytest.raises(ip.InvpriorError, match="15x15 kernels"):  # the learned prior's size is fixed
            ip.solve(problem, prior, method=method, kernel="learned", kernel_size=5)
    with pytest.raises(ip.InvpriorError, match="larger than the 8x8 image"):
        ip.solve(problem, ip.priors.TV(1.0), method="blind_tv", fixed_kernel=torch.ones(9, 9) / 81)
    with pytest.raises(ip.InvpriorError, match="needs a numeric TV weight"):
        ip.solve(problem, ip.priors.TV("auto"), method="blind_tv")
    with pytest.raises(ip.InvpriorError, match="needs"):
        ip.solve(inpaint, ip.priors.TV(1.0), method="blind_tv")


def test_the_kernel_error_falls_as_the_noise_falls():
    """diffusion-shapes, 2 test images, an anisotropic Gaussian kernel (the isotropic start is 0.87
    away in relative error). Measured mean relative kernel error: 0.225 at noise 0.1, 0.164 at 0.01."""
    prior = ip.zoo.load("diffusion-shapes")
    x = ip.data.dataset("shapes", "test")[:2].double()
    k = gaussian_kernel(torch.tensor([[4.0, 1.0], [1.0, 2.0]], dtype=torch.float64), 9)
    errors = []
    for sigma in (0.1, 0.01):
        problem = ip.simulate(Blur(x.shape, k), x, sigma, seed=0)
        r = ip.solve(problem, prior, method="blind_dps", steps=100, n_samples=2, seed=0)
        est = r.diagnostics.extra["kernel"]
        errors.append(float(((est - k).flatten(1).norm(dim=1) / k.norm()).mean()))
    assert errors[1] < errors[0] < 0.4, errors


def test_random_kernels_are_normalised_centred_and_seeded():
    k = random_kernels(60, 15, seed=4)
    assert k.shape == (60, 15, 15) and float(k.min()) >= 0
    torch.testing.assert_close(k.sum((1, 2)), torch.ones(60, dtype=torch.float64))
    t = torch.arange(15, dtype=torch.float64) - 7
    centre = torch.stack([(k.sum(2) * t).sum(1), (k.sum(1) * t).sum(1)], 1)
    assert float(centre.abs().max()) < 0.5  # centre of mass on the centre pixel (border truncation aside)
    torch.testing.assert_close(k, random_kernels(60, 15, seed=4))
    assert not torch.equal(k, random_kernels(60, 15, seed=5))
    with pytest.raises(ip.InvpriorError, match="kinds must be"):
        random_kernels(4, 15, kinds=("disk",))


def test_simplex_projection_and_kernel_error():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 3, 3, generator=g, dtype=torch.float64)
    p = project_simplex(v)
    assert float(p.min()) >= 0
    torch.testing.assert_close(p.sum((1, 2)), torch.ones(5, dtype=torch.float64))
    # optimality: no point of the simplex (vertices and random points) is closer to v
    cands = torch.cat([torch.eye(9, dtype=torch.float64), torch.rand(500, 9, generator=g, dtype=torch.float64)])
    cands = cands / cands.sum(1, keepdim=True)
    for vi, pi in zip(v.flatten(1), p.flatten(1), strict=True):
        assert float((vi - pi).norm()) <= float((vi - cands).norm(dim=1).min()) + 1e-12
    torch.testing.assert_close(project_simplex(p), p)  # a projection is idempotent
    k = gaussian_kernel(torch.eye(2, dtype=torch.float64) * 2.0, 9)
    padded = torch.nn.functional.pad(k, (3, 3, 3, 3))
    assert float(kernel_error(torch.roll(padded, (1, -2), (0, 1)), k)) < 1e-12  # shifts are forgiven
    assert float(kernel_error(torch.roll(padded, 3, 0), k)) > 0.1  # up to max_shift only
    small = gaussian_kernel(torch.eye(2, dtype=torch.float64), 5)
    big = torch.nn.functional.pad(small, (2, 2, 2, 2))
    assert float(kernel_error(small, big)) < 1e-12  # zero-padding about the centre
    delta = torch.zeros(9, 9, dtype=torch.float64)
    delta[4, 4] = 1
    assert float(kernel_error(delta, k)) > 0.5
    with pytest.raises(ip.InvpriorError, match="2-D kernel"):
        check_kernel(torch.ones(3))
    with pytest.raises(ip.InvpriorError, match="NaN"):
        check_kernel(torch.full((3, 3), float("nan")))


def test_blind_tv_estimates_the_kernel_on_a_validation_photograph():
    """clock at 128², a camera-shake-like kernel (random_kernels seed 5, the first), noise 0.01:
    measured kernel error 0.40 from the isotropic start's 0.66, PSNR 39.3 dB (y 36.8, oracle 40.1)."""
    x = ip.data.images.image("clock", 128)
    k = random_kernels(3, 15, seed=5)[0]
    problem = ip.simulate(Blur((1, 128, 128), k), x, 0.01, seed=0)
    r = ip.solve(problem, ip.priors.TV(0.1), method="blind_tv", kernel_size=15, kernel_steps=50)
    start = gaussian_kernel(torch.eye(2, dtype=torch.float64), 15)
    assert float(kernel_error(r.diagnostics.extra["kernel"][0], k)) < 0.5 < float(kernel_error(start, k))
    assert ip.eval.psnr(r.mean, x) > ip.eval.psnr(problem.y, x) + 1.5


def test_the_learned_kernel_prior_drives_both_blind_samplers():
    prior = ip.zoo.load("diffusion-shapes")
    x = ip.data.dataset("shapes", "test")[:1].double()
    k = torch.nn.functional.pad(random_kernels(1, 9, seed=7)[0], (3, 3, 3, 3))
    problem = ip.simulate(Blur(x.shape, k), x, 0.02, seed=0)
    start = kernel_error(torch.ones(15, 15) / 225, k)
    for method in ("blind_dps", "blind_reddiff"):
        r = ip.solve(problem, prior, method=method, kernel="learned", steps=40, n_samples=2, seed=0)
        est = r.diagnostics.extra["kernels"]
        assert est.shape == (2, 1, 15, 15) and float(est.min()) >= 0
        torch.testing.assert_close(est.sum((-1, -2)), torch.ones(2, 1, dtype=torch.float64))
        assert float(kernel_error(r.diagnostics.extra["kernel"][0], k)) < float(start)


def test_bench_blind_writes_rows_with_the_oracle_and_a_figure(tmp_path):
    from invprior.eval import bench_blind

    rows = bench_blind.bench(("shapes", "natural"), ("blind_dps (gaussian)", "blind_tv"), 1, 2, 10, tmp_path,
                             progress=False)  # fmt: skip
    assert [(r["data"], r["method"]) for r in rows] == [("shapes", "blind_dps (gaussian)"), ("natural", "blind_tv")]
    for row in rows:
        assert row["oracle PSNR"] > 10 and row["PSNR"] > 10 and 0 < row["kernel error"] < 3
    assert (tmp_path / "blind-shapes.png").stat().st_size > 1000
    val = bench_blind.make_problems("shapes", "val", 2)
    test = bench_blind.make_problems("shapes", "test", 2)
    assert not torch.equal(val[0][2], test[0][2])  # tuning never sees a test kernel
