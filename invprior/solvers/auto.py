"""Choosing the regularisation weight: Morozov's discrepancy principle.

For Gaussian noise the MAP estimate's data fit ``chi2(w) = ||y - A x̂_w||² / (m sigma²)`` grows with
the weight ``w``; the discrepancy principle picks the ``w`` with ``chi2(w) = target`` (1 by
default: fit the data to the noise level, no better). We bracket the root on a log grid and refine
it by bisection in ``log w`` (Morozov 1966; Hansen, *Discrete Inverse Problems*, SIAM 2010, §5.2).

Known behaviour, measured in docs/results/classical.md: on inpainting the PSNR-best weight
over-fits the observed pixels (chi2 ≪ 1), so the discrepancy principle over-smooths there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import InvpriorError
from ..operators import GaussianNoise, Problem

__all__ = ["discrepancy_weight"]


def discrepancy_weight(
    problem: Problem,
    prior,
    run: Callable[[object], torch.Tensor],
    *,
    target: float = 1.0,
    lo: float = 1e-2,
    hi: float = 1e6,
    iters: int = 12,
) -> tuple[float, list[tuple[float, float]], str | None]:
    """The weight ``w`` in ``[lo, hi]`` with ``chi2(x̂_w) ≈ target``; returns
    ``(w, [(w, chi2), ...], bound)``.

    ``run(prior_with_weight)`` returns the estimate for a prior. If even ``lo`` under-fits or
    ``hi`` over-fits, that bound is returned with ``bound`` = ``"lower"`` / ``"upper"`` (else None);
    ``ip.solve`` turns it into a warning and ``diagnostics.extra["auto_at_bound"]``.
    """
    if not isinstance(problem.noise, GaussianNoise) or not problem.noise.sigma > 0:
        raise InvpriorError("weight='auto' uses the discrepancy principle, which needs Gaussian noise with sigma > 0")
    trace: list[tuple[float, float]] = []

    def chi2(logw: float) -> float:
        w = math.exp(logw)
        x = run(prior.with_weight(w))
        c = float(problem.chi2(x).mean())
        trace.append((w, c))
        return c - target

    a, b = math.log(lo), math.log(hi)
    # coarse bracket: 7 points on the log grid
    grid = [a + (b - a) * i / 6 for i in range(7)]
    vals = [chi2(g) for g in grid]
    if vals[0] >= 0:
        return math.exp(a), trace, "lower"
    if vals[-1] <= 0:
        return math.exp(b), trace, "upper"
    i = next(k for k in range(1, 7) if vals[k] > 0)
    a, b = grid[i - 1], grid[i]
    for _ in range(iters - 7):
        m = 0.5 * (a + b)
        if chi2(m) > 0:
            b = m
        else:
            a = m
    # the last evaluated point closest to the target
    w, _ = min(trace, key=lambda t: abs(t[1] - target))
    return w, trace, None
