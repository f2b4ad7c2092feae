"""Conditional reconstruction (``e2e``, ``cfm``) and the flow-native PnP-Flow sampler.

``e2e`` and ``cfm`` run a ``ConditionalModel`` of the zoo on a problem of its operator family
(``models.conditional``): another operator type is refused with an error naming both tasks; an
operator or noise level outside the trained ranges (operator shift) runs with an
``OutOfFamilyWarning`` and is listed in ``diagnostics.extra["out_of_family"]`` (``strict=True``
refuses it).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from ..._checks import InvpriorError, make_generator
from ...operators import LinearOperator, Problem
from ...result import Diagnostics, Result
from .._common import bar
from ..registry import register
from .diffusion import _check_prior, _expand

__all__ = ["cfm", "e2e", "pnp_flow"]


def _conditioned(problem: Problem, prior, strict: bool) -> tuple[torch.Tensor, list[str]]:
    out = prior.check(problem.operator, float(problem.sigma), strict)
    return prior.condition(problem.operator, problem.y), out


def _extra(prior, out: list[str]) -> dict:
    return {"model": prior.name, "out_of_family": out, "trained_family": prior.family}


@register("e2e", family="map", needs=("gaussian_noise", "conditional_e2e"),
          reference="supervised UNet on (A⁺y, operator maps) → x (zoo e2e-*)")  # fmt: skip
def e2e(problem: Problem, prior, *, strict: bool = False) -> Result:
    """End-to-end reconstruction: one pass of a supervised UNet on ``A⁺y`` and the operator's maps.

    A point estimate (no uncertainty is claimed). Trained on a family of operators at noise
    sigma 0.03 to 0.07; outside it the network still runs (with a warning) but nothing ties its
    output to the data: check ``diagnostics.chi2``.
    """
    cond, out = _conditioned(problem, prior, strict)
    x = prior.reconstruct(cond).to(problem.dtype)
    return Result.from_point(x, Diagnostics(iterations=1, nfe=1, extra=_extra(prior, out)))


@register("cfm", family="sample", needs=("gaussian_noise", "conditional_flow"),
          reference="Lipman et al. 2023, arXiv:2210.02747 (conditional flow matching)")  # fmt: skip
def cfm(
    problem: Problem,
    prior,
    *,
    steps: int = 20,
    n_samples: int = 16,
    solver: str = "euler",
    seed: int = 0,
    strict: bool = False,
    progress: bool = False,
) -> Result:
    """Conditional flow matching: ``n_samples`` draws of ``dx/dt = v(x_t, t | A⁺y, maps)`` from
    ``t = 1`` (noise) to 0, by Euler or Heun (2 evaluations per step except the last) in ``steps`` steps.
    """
    if solver not in ("euler", "heun"):
        raise InvpriorError(f"solver must be 'euler' or 'heun', got {solver!r}")
    cond, out = _conditioned(problem, prior, strict)
    B = problem.batch
    cond = cond.repeat(n_samples, 1, 1, 1)
    g = make_generator(seed, problem.y.device)
    x = torch.randn((n_samples * B, *problem.operator.in_shape), generator=g)
    ts = torch.linspace(1.0, 0.0, steps + 1).tolist()
    nfe0 = prior.nfe
    with bar(steps, "cfm", progress) as pb, torch.no_grad():
        for t0, t1 in pairwise(ts):
            v = prior.velocity(x, t0, cond)
            if solver == "heun" and t1 > 0:
                v = 0.5 * (v + prior.velocity(x + (t1 - t0) * v, t1, cond))
            x = x + (t1 - t0) * v
            pb.update(x)
    samples = ((x + 1) / 2).to(problem.dtype).reshape(n_samples, B, *x.shape[1:])
    diag = Diagnostics(iterations=steps, nfe=prior.nfe - nfe0, extra=_extra(prior, out))
    return Result.from_samples(samples, diag)


@register("pnp_flow", family="sample", needs=("linear", "gaussian_noise", "diffusion"),
          reference="Martin et al. 2025 (ICLR), arXiv:2410.02423")  # fmt: skip
def pnp_flow(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    lr: float = 1.0,
    lr_exp: float = 0.5,
    n_avg: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """PnP-Flow (Martin, Gagneux, Hagemann & Steidl 2025): a gradient step on ``½||Ax - y||²``, then
    re-noising onto the flow's path and the flow's denoiser, on a uniform time grid.

    Step k of K has flow time ``t = 1 - k/K`` (``t = 1`` noise): ``z = x - γ_k A^T(Ax - y)`` with
    ``γ_k = lr t^lr_exp / ||A||²``, then ``x = mean over n_avg of D((1 - t) z + t ε, t)``. In the sigma
    view that is ``D(z + σ ε, σ)`` with ``σ = t / (2 (1 - t))`` ([0, 1] units), so it runs on every
    ``Diffusion`` prior; on a flow-matching prior (``fm-*``) it is the paper's algorithm. Each
    draw is a PnP estimate, not an exact posterior sample: the spread of draws is an indication only.
    """
    prior = _check_prior(prior)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    y, B = _expand(problem, n_samples)
    g = make_generator(seed, problem.y.device)
    gamma0 = lr / A.norm() ** 2
    x = A.pinv(y) if A.has_pinv else A._adjoint(y)
    x = x.to(problem.dtype)
    nfe0 = prior.nfe
    with bar(steps, "pnp_flow", progress) as pb, torch.no_grad():
        for k in range(steps):
            t = 1.0 - k / steps
            sigma = prior.sigma_max if t >= 1 else min(t / (2 * (1 - t)), prior.sigma_max)
            z = x - gamma0 * t**lr_exp * A._adjoint(A._forward(x) - y)
            acc = torch.zeros_like(z)
            for _ in range(n_avg):
                eps = torch.randn(z.shape, generator=g, dtype=z.dtype, device=z.device)
                acc = acc + prior.denoise(z + sigma * eps, sigma)
            x = acc / n_avg
            pb.update(x)
    samples = x.reshape(n_samples, B, *x.shape[1:])
    diag = Diagnostics(iterations=steps, nfe=prior.nfe - nfe0, extra={"flow_prior": hasattr(prior, "flow")})
    if not math.isfinite(float(gamma0)):
        raise InvpriorError("pnp_flow: the operator norm is 0")
    return Result.from_samples(samples, diag)
