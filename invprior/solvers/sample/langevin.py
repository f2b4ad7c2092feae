"""Langevin posterior sampling with classical and plug-and-play priors: ULA, MYULA, PnP-ULA.

All three run ``chains`` Markov chains in parallel (a batch), discard ``burn_in`` iterations, keep
every ``thin``-th state, and report the mean and per-pixel std over all kept states (Welford).
The Euler-Maruyama discretisation is biased at finite ``step``: for a Gaussian target with
precision ``P`` ULA's stationary covariance is ``(P (I - step P / 2))^{-1}``, not ``P^{-1}``.
"""

from __future__ import annotations

import math

import torch

from ..._checks import make_generator
from ...operators import Problem
from ...result import Diagnostics, Result
from .._common import bar, data_lipschitz, prior_grad, x0_or_default
from ..registry import register

__all__ = ["myula", "pnp_ula", "ula"]

_MAX_SAVED = 64


def _run_chains(problem: Problem, drift, step: float, *, chains, steps, burn_in, thin, seed, x0, progress, name,
                project=None) -> Result:  # fmt: skip
    g = make_generator(seed, problem.y.device)
    x = x0_or_default(problem, x0)
    xc = x.repeat(chains, *([1] * (x.dim() - 1)))  # chain c of image b sits at index c * B + b
    yc = problem.y.repeat(chains, *([1] * (problem.y.dim() - 1)))
    chain_problem = Problem(problem.operator, yc, problem.noise)
    n_kept, mean, m2 = 0, torch.zeros_like(x), torch.zeros_like(x)
    saved: list[torch.Tensor] = []
    trace: list[float] = []
    with bar(steps, name, progress) as pb:
        for k in range(steps):
            noise = torch.randn(xc.shape, generator=g, dtype=xc.dtype, device=xc.device)
            xc = xc + step * drift(chain_problem, xc) + math.sqrt(2 * step) * noise
            if project is not None:
                xc = project(xc)
            if k >= burn_in and (k - burn_in) % thin == 0:
                states = xc.reshape(chains, *x.shape)
                for c in range(chains):  # Welford over (iteration, chain)
                    n_kept += 1
                    delta = states[c] - mean
                    mean = mean + delta / n_kept
                    m2 = m2 + delta * (states[c] - mean)
                if len(saved) < _MAX_SAVED:
                    saved.extend(states[: _MAX_SAVED - len(saved)].unbind(0))
            if k % 10 == 0:
                with torch.no_grad():
                    trace.append(float(chain_problem.nll(xc).mean()))
            pb.update(xc)
    std = (m2 / max(n_kept - 1, 1)).sqrt()
    diag = Diagnostics(iterations=steps, loss_trace=trace)
    diag.extra.update({"step": step, "chains": chains, "kept_states": n_kept})
    return Result(torch.stack(saved), mean, std, diag)


@register("ula", family="sample", needs=("smooth",), reference="Roberts & Tweedie 1996; Durmus & Moulines 2017")
def ula(
    problem: Problem,
    prior,
    *,
    steps: int = 2000,
    step: float | None = None,
    chains: int = 4,
    burn_in: int = 500,
    thin: int = 5,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Unadjusted Langevin algorithm with a differentiable prior (Tikhonov, GaussianMixture):

        x <- x - step (∇_x -log p(y|x) + ∇R(x)) + sqrt(2 step) xi

    ``step=None`` uses ``0.5 / (L_data + L_prior)`` (Gaussian noise, linear A).
    """
    if step is None:
        Lp = prior.lipschitz(problem.operator.in_shape) if hasattr(prior, "lipschitz") else 1.0
        step = 0.5 / (data_lipschitz(problem) + Lp)

    def drift(p: Problem, x: torch.Tensor) -> torch.Tensor:
        return -(p.grad_nll(x) + prior_grad(prior, x))

    return _run_chains(problem, drift, step, chains=chains, steps=steps, burn_in=burn_in, thin=thin, seed=seed,
                       x0=x0, progress=progress, name="ula")  # fmt: skip


@register(
    "myula",
    family="sample",
    needs=("linear", "gaussian_noise", "regulariser"),
    reference="Durmus, Moulines & Pereyra 2018, SIIMS",
)
def myula(
    problem: Problem,
    prior,
    *,
    steps: int = 3000,
    step: float | None = None,
    smoothing: float | None = None,
    chains: int = 4,
    burn_in: int = 500,
    thin: int = 5,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Moreau-Yosida ULA for non-smooth priors (TV, wavelet L1): the prior gradient is that of the
    Moreau envelope, ``(x - prox_{lam R}(x)) / lam``:

        x <- x - step (∇_x -log p(y|x) + (x - prox_{lam R}(x)) / lam) + sqrt(2 step) xi

    Defaults as recommended by Durmus et al.: ``lam = 1 / L_data``, ``step = 1 / (L_data + 1/lam) / 2``.
    """
    L = data_lipschitz(problem)
    lam = 1.0 / L if smoothing is None else float(smoothing)
    if step is None:
        step = 0.5 / (L + 1.0 / lam)

    def drift(p: Problem, x: torch.Tensor) -> torch.Tensor:
        return -(p.grad_nll(x) + (x - prior.prox(x, lam)) / lam)

    res = _run_chains(problem, drift, step, chains=chains, steps=steps, burn_in=burn_in, thin=thin, seed=seed,
                      x0=x0, progress=progress, name="myula")  # fmt: skip
    res.diagnostics.extra["smoothing"] = lam
    return res


@register(
    "pnp_ula",
    family="sample",
    needs=("linear", "gaussian_noise", "denoiser", "image"),
    reference="Laumont et al. 2022, SIIMS 15(2)",
)
def pnp_ula(
    problem: Problem,
    prior,
    *,
    steps: int = 3000,
    step: float | None = None,
    eps: float = (5 / 255) ** 2,
    alpha: float = 1.0,
    chains: int = 4,
    burn_in: int = 500,
    thin: int = 5,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Plug-and-play ULA (Laumont et al. 2022): the prior score from a denoiser at variance ``eps``,

        x <- x + step (∇ log p(y|x) + alpha/eps (D(x, sqrt(eps)) - x) + (Π_C(x) - x)/lam_c) + sqrt(2 step) xi

    with ``C = [-1, 2]`` (a box keeping the chain where the denoiser was trained) and
    ``lam_c = 1 / (L_data + alpha/eps)``; ``step = 1 / (3 (L_data + alpha/eps + 1/lam_c))``.
    """
    L = data_lipschitz(problem)
    lam_c = 1.0 / (L + alpha / eps)
    if step is None:
        step = 1.0 / (3 * (L + alpha / eps + 1.0 / lam_c))
    sd = math.sqrt(eps)

    def drift(p: Problem, x: torch.Tensor) -> torch.Tensor:
        return -p.grad_nll(x) + (alpha / eps) * (prior(x, sd) - x) + (x.clamp(-1.0, 2.0) - x) / lam_c

    res = _run_chains(problem, drift, step, chains=chains, steps=steps, burn_in=burn_in, thin=thin, seed=seed,
                      x0=x0, progress=progress, name="pnp_ula")  # fmt: skip
    res.diagnostics.nfe = steps * chains
    return res
