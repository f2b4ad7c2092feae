"""Exact posterior sampling for a Gaussian-mixture prior and linear Gaussian measurements."""

from __future__ import annotations

import torch

from ..._checks import make_generator
from ...data.gmm import GaussianMixture
from ...operators import Problem
from ...result import Diagnostics, Result
from ..registry import register

__all__ = ["exact"]


@register(
    "exact",
    family="sample",
    needs=("linear", "gaussian_noise", "gaussian_mixture"),
    reference="closed-form GMM posterior; benchmark of Cardoso et al. 2024 (arXiv:2308.07983)",
)
def exact(problem: Problem, prior: GaussianMixture, *, n_samples: int = 100, seed: int = 0) -> Result:
    """Draw ``n_samples`` exact posterior samples: the oracle every sampler is compared with.

    ``p(x | y) = sum_k w'_k N(mu'_k, Sigma'_k)`` (see ``GaussianMixture.posterior``), one posterior per
    batch element. ``mean`` and ``std`` are the exact posterior mean and marginal standard
    deviation (not sample estimates); ``diagnostics.extra["posterior_weights"]`` holds ``w'``.
    """
    g = make_generator(seed)
    dtype = problem.dtype
    samples, means, stds, weights = [], [], [], []
    for b in range(problem.batch):
        post = prior.posterior(problem.operator, problem.y[b : b + 1], problem.sigma)  # type: ignore[arg-type]
        samples.append(post.sample(n_samples, g, dtype=torch.float64))
        means.append(post.mean())
        stds.append(torch.diagonal(post.covariance()).clamp_min(0).sqrt().reshape(post.shape))
        weights.append(post.weights.tolist())
    s = torch.stack(samples, dim=1).to(dtype)  # (n, B, *shape)
    diag = Diagnostics(extra={"posterior_weights": weights})
    return Result(s, torch.stack(means).to(dtype), torch.stack(stds).to(dtype), diag)
