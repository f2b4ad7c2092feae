"""The Gaussian-mixture oracle: Tweedie, exact posterior, and the `exact` sampler."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import invprior as ip
from invprior.data import GaussianMixture
from invprior.operators import Inpainting, Matrix


def _full_gmm(d=5, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    C = torch.randn(K, d, d, generator=g, dtype=torch.float64)
    C = C @ C.transpose(1, 2) / d + 0.2 * torch.eye(d, dtype=torch.float64)
    return GaussianMixture(torch.rand(K, generator=g) + 0.2, 3 * torch.randn(K, d, generator=g), C)


MIXTURES = {
    "mcgdiff-8": lambda: GaussianMixture.mcgdiff(8, seed=1),
    "full": _full_gmm,
    "shared-full": lambda: GaussianMixture(torch.ones(2), torch.randn(2, 4), _full_gmm(4, 1).covariances()[0]),
    "isotropic-mixed": lambda: GaussianMixture(torch.tensor([1.0, 3.0]), torch.randn(2, 6), torch.tensor([0.5, 2.0])),
}


@pytest.mark.parametrize("name", MIXTURES)
@pytest.mark.parametrize("sigma", [0.05, 0.7, 4.0])
def test_denoiser_is_tweedie(name, sigma):
    p = MIXTURES[name]()
    x = (p.sample(7, seed=2, dtype=torch.float64) + sigma * torch.randn(7, p.d, dtype=torch.float64)).requires_grad_(
        True
    )
    (g,) = torch.autograd.grad(p.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(p.denoise(x.detach(), sigma), x.detach() + sigma**2 * g, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(p.score(x.detach(), sigma), g, rtol=1e-9, atol=1e-9)


def test_denoiser_at_huge_sigma_returns_the_prior_mean():
    p = GaussianMixture.mcgdiff(8, seed=0)
    x = torch.zeros(1, 8, dtype=torch.float64)
    torch.testing.assert_close(p.denoise(x, 1e5)[0], p.mean().double(), atol=1e-3, rtol=0)


def test_log_prob_is_normalised_in_1d():
    p = GaussianMixture(torch.tensor([0.3, 0.7]), torch.tensor([[-2.0], [1.5]]), torch.tensor([0.4, 1.3]))
    t = torch.linspace(-15, 15, 20001, dtype=torch.float64)[:, None]
    assert float(torch.trapezoid(p.log_prob(t).exp(), t[:, 0])) == pytest.approx(1.0, abs=1e-8)


def test_samples_have_the_mixture_moments():
    p = _full_gmm()
    s = p.sample(200_000, seed=0, dtype=torch.float64)
    torch.testing.assert_close(s.mean(0), p.mean(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(s.T), p.covariance(), atol=0.1, rtol=0.02)


def test_single_gaussian_posterior_matches_the_information_form():
    d = 6
    g = torch.Generator().manual_seed(0)
    C = torch.randn(d, d, generator=g, dtype=torch.float64)
    C = C @ C.T + torch.eye(d, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    A = torch.randn(3, d, generator=g, dtype=torch.float64)
    y = torch.randn(1, 3, generator=g, dtype=torch.float64)
    s = 0.4
    post = GaussianMixture(torch.ones(1), mu[None], C).posterior(A, y, s)
    P = torch.linalg.inv(torch.linalg.inv(C) + A.T @ A / s**2)
    m = P @ (torch.linalg.solve(C, mu) + A.T @ y[0] / s**2)
    torch.testing.assert_close(post.covariances()[0], P)
    torch.testing.assert_close(post.means[0], m)


def test_posterior_mean_matches_importance_sampling():
    p = GaussianMixture.mcgdiff(8, seed=3)
    A, sigma_y = GaussianMixture.mcgdiff_measurement(8, 2, seed=3)
    x_true = p.sample(1, seed=4, dtype=torch.float64)
    y = x_true @ A.T + sigma_y * torch.randn(1, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    post = p.posterior(A, y, sigma_y)
    # self-normalised importance sampling with the prior as proposal
    xs = p.sample(400_000, seed=6, dtype=torch.float64)
    logw = -0.5 * ((xs @ A.T - y) ** 2).sum(1) / sigma_y**2
    w = torch.softmax(logw, 0)
    snis = (w[:, None] * xs).sum(0)
    ess = float(1 / (w**2).sum())
    assert ess > 500
    sd = post.covariance().diagonal().sqrt()
    tol = 6 * sd / math.sqrt(ess) + 1e-3
    assert bool(((post.mean() - snis).abs() <= tol).all()), (post.mean(), snis, tol)


def _mixture_cdf_1d(post: GaussianMixture, u: torch.Tensor):
    m = (post.means @ u).numpy()
    v = torch.einsum("d,kde,e->k", u, post.covariances(), u).sqrt().numpy()
    w = post.weights.numpy()

    def cdf(t):
        return sum(wk * stats.norm.cdf(t, mk, vk) for wk, mk, vk in zip(w, m, v, strict=True))

    return cdf


@pytest.mark.parametrize("d,d_y", [(8, 1), (8, 4), (20, 2)])
def test_exact_samples_pass_a_goodness_of_fit_test(d, d_y):
    """Kolmogorov-Smirnov test of the `exact` solver's samples against the analytic posterior CDF
    along random directions (Bonferroni-corrected)."""
    prior = GaussianMixture.mcgdiff(d, seed=d_y)
    A, sigma_y = GaussianMixture.mcgdiff_measurement(d, d_y, seed=d_y)
    problem = ip.simulate(Matrix(A), prior.sample(1, seed=1, dtype=torch.float64), sigma_y, seed=2)
    r = ip.solve(problem, prior, method="exact", n_samples=4000, seed=3)
    post = prior.posterior(Matrix(A), problem.y, sigma_y)
    g = torch.Generator().manual_seed(9)
    n_dirs = 5
    for _ in range(n_dirs):
        u = torch.randn(d, generator=g, dtype=torch.float64)
        u = u / u.norm()
        proj = (r.samples[:, 0] @ u).numpy()
        pval = stats.kstest(proj, _mixture_cdf_1d(post, u)).pvalue
        assert pval > 0.01 / n_dirs
    torch.testing.assert_close(r.mean[0], post.mean())


def test_exact_works_on_images():
    shape = (1, 4, 4)
    prior = GaussianMixture(
        torch.ones(2), torch.stack([torch.full((16,), 0.3), torch.full((16,), 0.7)]), 0.01, shape=shape
    )
    x = prior.sample(1, seed=0).clamp(0, 1)
    A = Inpainting.random(shape, 0.5, seed=0)
    problem = ip.simulate(A, x, 0.05, seed=0)
    r = ip.solve(problem, prior, method="exact", n_samples=50)
    assert r.samples.shape == (50, 1, 1, 4, 4) and r.std.shape == (1, 1, 4, 4)
    # observed pixels have a posterior std below the noise level, missing ones near the prior's
    obs = A.mask[0]
    assert float(r.std[0, 0][obs].max()) < 0.05
    assert float(r.std[0, 0][~obs].min()) > 0.05


def test_exact_needs_are_checked():
    x = torch.rand(1, 1, 8, 8)
    problem = ip.simulate(ip.operators.PhaseRetrieval(x.shape), x, 0.1)
    with pytest.raises(ip.InvpriorError, match="exact needs a linear operator; PhaseRetrieval is nonlinear"):
        ip.solve(problem, GaussianMixture.mcgdiff(64), method="exact")
    problem = ip.simulate(Inpainting.random(x.shape, 0.5), x, 0.1)
    with pytest.raises(ip.InvpriorError, match="GaussianMixture prior; no prior was given — use dip or tikhonov"):
        ip.solve(problem, None, method="exact")
    with pytest.raises(ip.InvpriorError, match="mixture lives on"):
        ip.solve(problem, GaussianMixture.mcgdiff(8), method="exact")
