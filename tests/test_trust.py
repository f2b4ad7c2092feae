"""The trust layer (data fit, plausibility, flags) and calibration, checked against closed forms and
the exact Gaussian-mixture posterior."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import invprior as ip
from invprior._checks import InvpriorError
from invprior.data import GaussianMixture
from invprior.eval.trust_report import data_fidelity, ode_log_likelihood, residual_map
from invprior.operators import Matrix, Problem, simulate


@pytest.fixture(scope="module")
def gmm_setup():
    d = 8
    prior = GaussianMixture.mcgdiff(d, seed=0)
    A, sy = GaussianMixture.mcgdiff_measurement(d, 4, seed=1)
    x = prior.sample(60, torch.Generator().manual_seed(5))
    return prior, Matrix(A), sy, x


def _split(r, problem, n):
    """One Result and one Problem per batch element (the calibration set's units)."""
    rs = [type(r)(r.samples[:, i : i + 1], r.mean[i : i + 1], r.std[i : i + 1], r.diagnostics, r.method)
          for i in range(n)]  # fmt: skip
    ps = [Problem(problem.operator, problem.y[i : i + 1], problem.noise, truth=problem.truth[i : i + 1])
          for i in range(n)]  # fmt: skip
    return rs, ps


def test_ode_log_likelihood_matches_the_exact_mixture_density(gmm_setup):
    prior, *_ = gmm_setup
    x = prior.sample(5, torch.Generator().manual_seed(1))
    diff = ip.priors.Diffusion.from_denoiser(prior, 0.01, 100.0)
    exact = prior.log_prob(x, sigma=0.01)
    ll = ode_log_likelihood(diff, x, steps=64)  # exact trace (d = 8)
    assert torch.allclose(ll.float(), exact.float(), atol=0.35), (ll, exact)
    hutch = ode_log_likelihood(diff, x, steps=64, exact_trace=False, probes=8)
    assert float((hutch - exact).abs().max()) < 1.0
    # evaluated at a coarser noise level: the density of the prior smoothed at that level
    coarse = ode_log_likelihood(diff, x, steps=64, sigma_min=1.0)
    assert torch.allclose(coarse.float(), prior.log_prob(x, sigma=1.0).float(), atol=0.35)
    assert float((coarse - exact).abs().max()) > 1.0  # and it is a different number


def test_chi2_p_value_has_the_closed_form_for_two_dof():
    A = Matrix(torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    problem = simulate(A, x, 0.5, seed=3)
    samples = torch.stack([x, x + 1.0])
    chi2, p, dof = data_fidelity(problem, samples)
    assert dof == 2
    assert torch.allclose(chi2[0], problem.chi2(x).double())
    assert torch.allclose(p, torch.exp(-chi2 * dof / 2), rtol=1e-10)  # P(chi2_2 >= v) = exp(-v / 2)


def test_residual_map_of_inpainting_is_an_image_with_zeros_where_unobserved():
    x = ip.data.dataset("shapes", "test")[:2].double()
    A = ip.operators.Inpainting.random(x.shape, 0.5, seed=0)
    problem = simulate(A, x, 0.05, seed=0)
    r, note = residual_map(problem, x)
    assert r.shape == x.shape and "image" in note
    assert bool((r[:, ~A.mask] == 0).all())
    assert 0.8 < float(r[:, A.mask].std()) < 1.2  # the truth's residuals are the unit-variance noise


def test_flags_raise_on_misfit_and_atypical_samples_and_not_on_exact_draws(gmm_setup):
    prior, A, sy, x = gmm_setup
    problem = simulate(A, x[:20], sy, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact posterior draws raise no flag, so no TrustWarning
        r = ip.solve(problem, prior, method="exact", n_samples=64, seed=0)
    assert r.trust is not None and r.trust.plausibility is not None  # exact density: computed by default
    assert r.trust.n_flags == 0
    wrong = type(r).from_samples(torch.full((8, 20, 8), 60.0, dtype=torch.float64))
    t = ip.eval.trust(wrong, problem, prior)
    kinds = {f.kind for fl in t.flags for f in fl}
    assert kinds == {"data_misfit", "atypical"}
    assert float(t.percentile.max()) == 0.0
    assert all(f.numbers for fl in t.flags for f in fl)  # every flag carries its numbers


def test_solve_warns_when_the_result_does_not_fit_the_data():
    x = ip.data.dataset("shapes", "test")[:2].double()
    problem = simulate(ip.operators.Blur.gaussian(x.shape, 1.0), x, 0.02, seed=0)
    with pytest.warns(ip.solvers.TrustWarning, match="data_misfit"):
        r = ip.solve(problem, ip.priors.Tikhonov(weight=1e4), method="tikhonov")
    assert r.trust.flags[0][0].numbers["chi2_median"] > 1.5


def test_plausibility_of_a_prior_without_density_is_an_error_not_a_number():
    x = ip.data.dataset("shapes", "test")[:2].double()
    with pytest.raises(InvpriorError, match="has no density"):
        ip.eval.plausibility(ip.priors.TV(0.1), x)
    problem = simulate(ip.operators.Blur.gaussian(x.shape, 1.0), x, 0.02, seed=0)
    r = ip.solve(problem, ip.priors.TV(0.0004), method="pdhg")
    assert r.trust.plausibility is None and "no density" in r.trust.plausibility_note
    with pytest.raises(InvpriorError, match="has no density"):
        ip.eval.trust(r, problem, ip.priors.TV(0.0004), plausibility_of="mean")


def test_coverage_curve_of_gaussian_truths_is_calibrated():
    g = torch.Generator().manual_seed(0)
    mean, std = torch.rand(4, 1, 32, 32, generator=g), 0.1 + torch.rand(4, 1, 32, 32, generator=g)
    truth = mean + std * torch.randn(mean.shape, generator=g)
    cc = ip.eval.coverage_curve(mean, std, truth)
    assert cc["calibration_error"] < 0.02
    narrow = ip.eval.coverage_curve(mean, std / 3, truth)
    assert narrow["empirical"][4] < 0.6 and narrow["calibration_error"] > 0.2


def test_exact_intervals_cover_at_the_nominal_level(gmm_setup):
    prior, A, sy, x = gmm_setup
    problem = simulate(A, x, sy, seed=7)
    r = ip.solve(problem, prior, method="exact", n_samples=64, seed=0)
    assert 0.85 <= ip.eval.coverage(r.samples, x, 0.9) <= 0.95
    assert 0.85 <= ip.eval.coverage_curve(r.mean, r.std, x)["empirical"][4] <= 0.95


def test_recalibration_fixes_an_under_covering_sampler_on_held_out_problems(gmm_setup):
    prior, A, sy, x = gmm_setup
    problem = simulate(A, x, sy, seed=7)
    diff = ip.priors.Diffusion.from_denoiser(prior, 0.01, 100.0)
    r = ip.solve(problem, diff, method="reddiff", n_samples=32, steps=50, seed=0)
    rs, ps = _split(r, problem, 60)
    cal = ip.eval.calibrate(rs[:30], ps[:30])
    held = cal.evaluate(rs[30:], ps[30:])
    assert held["before"][0.9] < 0.5  # reddiff's spread is far too narrow here
    assert 0.85 <= held["after"][0.9] <= 0.95
    assert cal.scale(0.9) > 2.0
    t = ip.eval.trust(rs[40], ps[40], calibration=cal)
    assert t.flags[0] and t.flags[0][-1].kind == "too_narrow"
    lo, hi = cal.interval(rs[40])
    assert bool((lo <= hi).all())


def test_calibrate_refuses_too_few_problems_other_operators_and_point_estimates(gmm_setup):
    prior, A, sy, x = gmm_setup
    problem = simulate(A, x[:12], sy, seed=7)
    r = ip.solve(problem, prior, method="exact", n_samples=16, seed=0)
    rs, ps = _split(r, problem, 12)
    with pytest.raises(InvpriorError, match="at least 10"):
        ip.eval.calibrate(rs[:9], ps[:9])
    other = simulate(Matrix(torch.eye(8, dtype=torch.float64)[:4]), x[:1], sy, seed=0)
    with pytest.raises(InvpriorError, match="share one operator"):
        ip.eval.calibrate([*rs[:10], rs[10]], [*ps[:10], other])
    cal = ip.eval.calibrate(rs, ps)
    with pytest.raises(InvpriorError, match="same kind"):
        cal.evaluate([rs[0]], [other])
    point = ip.result.Result.from_point(x[:1])
    with pytest.raises(InvpriorError, match="point estimate"):
        ip.eval.calibrate([point] * 10, [ps[0]] * 10)


def test_trust_summary_is_saved_with_the_result(tmp_path, gmm_setup):
    prior, A, sy, x = gmm_setup
    problem = simulate(A, x[:3], sy, seed=7)
    r = ip.solve(problem, prior, method="exact", n_samples=8, seed=0)
    r.save(tmp_path / "out")
    import json

    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(s["trust"]["chi2_per_sample"]) == 8 and s["trust"]["dof"] == 4
    assert all(math.isfinite(v) for row in s["trust"]["plausibility_percentile"] for v in row)
