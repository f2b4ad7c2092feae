"""Plug-and-play and RED: a denoiser ``D(x, sigma)`` in place of a prox or a prior gradient."""

from __future__ import annotations

import math

import torch

from ..._checks import InvpriorError
from ...operators import LinearOperator, Problem
from ...result import Diagnostics, Result
from .._common import bar, data_lipschitz, rel_change, x0_or_default
from ..registry import register

__all__ = ["dpir", "pnp_admm", "pnp_hqs", "red"]

# where prox_data has no closed form (CT) it runs CG, warm-started at z: a loose inner tolerance
# is enough inside an outer loop whose denoiser step dominates the error
_CG_TOL, _CG_ITERS = 1e-4, 100


def _nll_trace(problem: Problem, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(problem.nll(x).sum())


@register(
    "pnp_admm", family="map", needs=("linear", "gaussian_noise", "denoiser"),
    reference="Venkatakrishnan, Bouman & Wohlberg 2013; Chan et al. 2017",
)  # fmt: skip
def pnp_admm(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    sigma_d: float | None = None,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Plug-and-play ADMM: the prox of the prior replaced by a denoiser at level ``sigma_d``:

        x <- argmin ½||A x - y||²/sigma² + 1/(2 sigma_d²) ||x - (z - u)||²
        z <- D(x + u, sigma_d),   u <- u + x - z

    (``rho = 1 / sigma_d²``: a MAP denoiser at noise level ``sigma_d`` is the prox of ``R / rho``).
    Default ``sigma_d = max(4 sigma_y, 0.02)``: the best of {1, 2, 4} x sigma_y for deblurring on the
    validation images (docs/results/pnp-tuning.md; 4 was the grid's edge). ``loss_trace`` holds
    ``-log p(y | z)``. Measured weakness: with 70% missing pixels PnP-ADMM stalls (20 dB on validation).
    """
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2 = problem.sigma**2  # type: ignore[operator]
    sd = max(4 * problem.sigma, 0.02) if sigma_d is None else float(sigma_d)  # type: ignore[operator]
    z = x0_or_default(problem, x0)
    u = torch.zeros_like(z)
    trace, change = [_nll_trace(problem, z)], math.inf
    with bar(steps, "pnp_admm", progress) as pb:
        for _ in range(steps):
            x = A.prox_data(z - u, problem.y, s2 / sd**2, tol=_CG_TOL, max_iter=_CG_ITERS)
            z_old = z
            z = prior(x + u, sd)
            u = u + x - z
            change = rel_change(z, z_old)
            trace.append(_nll_trace(problem, z))
            pb.update(z)
            if change < tol:
                break
    diag = Diagnostics(iterations=len(trace) - 1, converged=change < tol, loss_trace=trace, nfe=len(trace) - 1)
    diag.extra["sigma_d"] = sd
    return Result.from_point(z, diag)


def _sigma_schedule(start: float, end: float, steps: int) -> list[float]:
    return torch.logspace(math.log10(start), math.log10(end), steps, dtype=torch.float64).tolist()


def _hqs_loop(problem, prior, sigmas, lam, x0, progress, name) -> Result:
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2 = problem.sigma**2  # type: ignore[operator]
    z = x0_or_default(problem, x0)
    trace = [_nll_trace(problem, z)]
    with bar(len(sigmas), name, progress) as pb:
        for sk in sigmas:
            # x_k = argmin ||y - A x||² + alpha_k ||x - z||², alpha_k = lam sigma_y² / sigma_k²  (DPIR eq. 7)
            x = A.prox_data(z, problem.y, lam * s2 / sk**2, tol=_CG_TOL, max_iter=_CG_ITERS)
            z = prior(x, sk)
            trace.append(_nll_trace(problem, z))
            pb.update(z)
    diag = Diagnostics(iterations=len(sigmas), loss_trace=trace, nfe=len(sigmas))
    diag.extra["sigmas"] = [float(s) for s in sigmas]
    return Result.from_point(z, diag)


@register(
    "pnp_hqs", family="map", needs=("linear", "gaussian_noise", "denoiser"), reference="Zhang et al. 2017 (IRCNN)"
)
def pnp_hqs(
    problem: Problem,
    prior,
    *,
    steps: int = 20,
    sigma_start: float = 0.6,
    sigma_end: float | None = None,
    lam: float = 1.0,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Plug-and-play half-quadratic splitting with a log-spaced denoiser schedule ``sigma_k``:

        x_k = argmin ½||A x - y||²/sigma² + lam/(2 sigma_k²) ||x - z_{k-1}||²,   z_k = D(x_k, sigma_k)

    from ``sigma_start`` to ``sigma_end`` (default ``sigma_y``) -- IRCNN (Zhang et al. 2017, CVPR).
    Defaults tuned for deblurring on the validation images; for 70% inpainting use
    ``sigma_start=0.3, steps=40`` (docs/results/pnp-tuning.md).
    """
    end = problem.sigma if sigma_end is None else sigma_end  # type: ignore[assignment]
    sigmas = _sigma_schedule(sigma_start, max(end, 1e-4), steps)
    return _hqs_loop(problem, prior, sigmas, lam, x0, progress, "pnp_hqs")


def _shipped_denoiser():
    from ...priors.denoisers import LearnedDenoiser

    return LearnedDenoiser.pretrained()


@register(
    "dpir", family="map", needs=("linear", "gaussian_noise", "denoiser"), reference="Zhang et al. 2021, TPAMI",
    default_prior=_shipped_denoiser,
)  # fmt: skip
def dpir(
    problem: Problem,
    prior=None,
    *,
    steps: int = 16,
    sigma_start: float = 0.2,
    lam: float = 0.23,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Deep plug-and-play image restoration (Zhang et al. 2021, arXiv:2008.13751).

    HQS with ``alpha_k = lam sigma_y² / sigma_k²`` and ``sigma_k`` log-spaced from ``sigma_start``
    down to ``sigma_y`` over ``steps`` iterations; ``lam = 0.23`` as in the paper. ``steps=16,
    sigma_start=0.2`` were the best for deblurring on the validation images (the paper: 8 steps from
    49/255); for 70% inpainting use ``steps=24, sigma_start=0.4`` (docs/results/pnp-tuning.md).
    ``prior=None`` uses the shipped learned denoiser (``LearnedDenoiser.pretrained()``).
    """
    prior = _shipped_denoiser() if prior is None else prior
    sigmas = _sigma_schedule(sigma_start, max(float(problem.sigma), 1e-4), steps)  # type: ignore[arg-type]
    return _hqs_loop(problem, prior, sigmas, lam, x0, progress, "dpir")


@register("red", family="map", needs=("denoiser",), reference="Romano, Elad & Milanfar 2017, SIAM J. Imaging Sci.")
def red(
    problem: Problem,
    prior,
    *,
    steps: int = 2000,
    weight: float | None = None,
    sigma_d: float = 0.05,
    tol: float = 1e-5,
    x0: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Regularisation by denoising, gradient form (Romano, Elad & Milanfar 2017):

        x <- x - tau (∇_x -log p(y | x) + weight (x - D(x, sigma_d)))

    with ``tau = 1 / (L_data + weight)`` for Gaussian noise and a linear operator (``L_data =
    ||A||²/sigma²``), else ``tau = 1 / (2 weight)``. Default ``weight = 1 / sigma_d²`` (RED's
    "lambda" in the noise-level scaling of the data term); ``sigma_d = 0.05`` was the best of
    {0.01, 0.02, 0.05} for deblurring on the validation images (grid edge). Measured weakness:
    gradient-form RED does not fill 70% missing pixels (13 dB on validation). It stops when the
    relative change of ``x`` falls below ``tol``; that takes many steps: camera 128² deblurring (2 px,
    noise 0.02) converges after 1163 (52 s, two threads) at 26.83 dB, where the former 200-step default
    ended unconverged at 26.27 dB. ``sigma_d`` was tuned with 200 steps and is not retuned for this.
    """
    x = x0_or_default(problem, x0)
    w = 1.0 / sigma_d**2 if weight is None else float(weight)
    try:
        tau = 1.0 / (data_lipschitz(problem) + w)
    except InvpriorError:  # Poisson or nonlinear: no global Lipschitz constant
        tau = 0.5 / w
    trace, change = [_nll_trace(problem, x)], math.inf
    with bar(steps, "red", progress) as pb:
        for _ in range(steps):
            g = problem.grad_nll(x) + w * (x - prior(x, sigma_d))
            x_new = x - tau * g
            change = rel_change(x_new, x)
            x = x_new
            trace.append(_nll_trace(problem, x))
            pb.update(x)
            if change < tol:
                break
    diag = Diagnostics(iterations=len(trace) - 1, converged=change < tol, loss_trace=trace, nfe=len(trace) - 1)
    diag.extra.update({"weight": w, "step": tau})
    return Result.from_point(x, diag)
