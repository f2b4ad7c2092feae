"""CSGM through a diffusion sampler: with a Gaussian prior (exact affine denoiser) the K-step DDIM
map is affine in the starting noise, so the optimum is a ridge regression in closed form."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import invprior as ip
from invprior.data import GaussianMixture
from invprior.operators import Matrix
from invprior.priors import Diffusion
from invprior.solvers.map.csgm_diffusion import deterministic_sample


def _setup(d: int = 6, v: float = 0.5):
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    gm = GaussianMixture(torch.ones(1), mu[None], v)
    prior = Diffusion.from_denoiser(gm, 0.002, 20.0)
    A = Matrix(torch.randn(4, d, generator=g, dtype=torch.float64))
    problem = ip.simulate(A, gm.sample(2, seed=1, dtype=torch.float64), 0.2, seed=2)
    return mu, v, prior, A, problem


def _ddim_gain(prior: Diffusion, steps: int, v: float) -> float:
    """S_K(z) - mu = c (sigma_max z - mu): each Euler step multiplies x - mu by 1 + (s' - s) s / (v + s²)."""
    sig = prior.schedule(steps).tolist()
    return math.prod(1 + (s1 - s0) * s0 / (v + s0**2) for s0, s1 in itertools.pairwise(sig))


def test_the_optimum_is_the_closed_form_ridge_regression():
    mu, v, prior, A, problem = _setup()
    K, lam, sy = 5, 1.0, 0.2
    c, smax = _ddim_gain(prior, K, v), prior.sigma_max
    z = torch.randn(3, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(deterministic_sample(prior, z, K), mu + c * (smax * z - mu))  # the affine map
    M = A.dense() * c * smax
    H = M.T @ M / sy**2 + lam * torch.eye(6, dtype=torch.float64)
    rhs = (problem.y - (1 - c) * mu @ A.dense().T) @ M / sy**2
    z_star = torch.linalg.solve(H, rhs.T).T
    x_star = mu + c * (smax * z_star - mu)
    r = ip.solve(problem, prior, method="csgm_diffusion", steps=K, lam=lam, optimizer="lbfgs", lr=1.0, iters=30,
                 restarts=2, seed=0)  # fmt: skip
    torch.testing.assert_close(r.mean, x_star, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(r.diagnostics.extra["latent"], dtype=torch.float64), z_star,
                               atol=1e-6, rtol=0)  # fmt: skip
    assert float(r.std.max()) < 1e-5  # convex: every restart finds the same optimum


def test_checkpointing_changes_memory_not_gradients():
    _mu, _v, prior, _A, _problem = _setup()
    z = torch.randn(2, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    grads = []
    for ck in (True, False):
        for solver in ("euler", "heun"):
            (gz,) = torch.autograd.grad(deterministic_sample(prior, z, 6, solver, checkpointed=ck).square().sum(), z)
            grads.append(gz)
    torch.testing.assert_close(grads[0], grads[2])
    torch.testing.assert_close(grads[1], grads[3])


def test_sphere_prior_keeps_the_noise_on_the_sphere_and_counts_evaluations():
    _mu, _v, prior, _A, problem = _setup()
    r = ip.solve(problem, prior, method="csgm_diffusion", steps=4, prior_term="sphere", iters=20, restarts=3,
                 noise_steps=1, seed=0)  # fmt: skip
    z = torch.tensor(r.diagnostics.extra["latent"], dtype=torch.float64)
    torch.testing.assert_close(z.norm(dim=1), torch.full((2,), math.sqrt(6), dtype=torch.float64))
    # 20 differentiated objectives (4 forwards, 4 recomputed, 4 backwards each) and one final forward + sample
    assert r.diagnostics.nfe == 20 * 12 + 4 + 4
    assert r.samples.shape == (3, 2, 6) and r.std is not None


def test_bad_input_is_refused_clearly():
    _mu, _v, prior, _A, problem = _setup()
    with pytest.raises(ip.InvpriorError, match="steps must be a whole number >= 1"):
        ip.solve(problem, prior, method="csgm_diffusion", steps=0)
    with pytest.raises(ip.InvpriorError, match=r"noise_steps must be in \[0, steps\)"):
        ip.solve(problem, prior, method="csgm_diffusion", steps=3, noise_steps=3)
    with pytest.raises(ip.InvpriorError, match="prior_term must be"):
        ip.solve(problem, prior, method="csgm_diffusion", prior_term="laplace")
    with pytest.raises(ip.InvpriorError, match="needs"):
        ip.solve(problem, ip.priors.Tikhonov(1.0), method="csgm_diffusion")
