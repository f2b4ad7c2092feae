"""Choosing the regularisation weight: Morozov's discrepancy principle.

For Gaussian noise the MAP estimate's data fit ``chi2(w) = ||y - A x̂_w||² / (m sigma²)`` grows with
the weight ``w``; the discrepancy principle picks the ``w`` with ``chi2(w) = target`` (1 by
default: fit the data to the noise level, no better). We bracket the root in ``log w`` by decades
from a starting guess and refine it by regula falsi on ``log chi2`` (nearly linear in ``log w``),
warm-starting every solve and solving loosely until the final one (Morozov 1966; Hansen, *Discrete
Inverse Problems*, SIAM 2010, §5.2).

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
    run: Callable[..., torch.Tensor],
    *,
    target: float = 1.0,
    lo: float = 1e-2,
    hi: float = 1e6,
    iters: int = 12,
    w0: float = 10.0,
    rtol: float = 0.02,
) -> tuple[float, list[tuple[float, float]], str | None, object]:
    """The weight ``w`` in ``[lo, hi]`` with ``chi2(x̂_w) ≈ target``; returns
    ``(w, [(w, chi2), ...], bound, final)`` with ``final`` what ``run`` returned for ``w``.

    ``run(prior_with_weight, x0, final)`` returns a ``Result`` for a prior, started from ``x0`` (the
    previous estimate, or None) and solved to the method's own tolerance if ``final`` (loosely
    otherwise). The search works on ``log chi2`` against ``log w``, which is close to linear:

    1. from ``w0``, steps of ×10 (÷10) until the root is bracketed (or ``hi``/``lo`` is reached);
    2. regula falsi with the Illinois modification inside the bracket until ``chi2`` is within
       ``rtol`` of the target (at most ``iters`` loose solves in all);
    3. one final solve at the chosen weight, warm-started, at full tolerance.

    Every solve starts from the previous estimate, so the loose ones cost a few iterations each.
    If even ``lo`` under-fits or ``hi`` over-fits, that bound is returned with ``bound`` = ``"lower"``
    / ``"upper"`` (else None); ``ip.solve`` turns it into a warning and
    ``diagnostics.extra["auto_at_bound"]``.
    """
    if not isinstance(problem.noise, GaussianNoise) or not problem.noise.sigma > 0:
        raise InvpriorError("weight='auto' uses the discrepancy principle, which needs Gaussian noise with sigma > 0")
    trace: list[tuple[float, float]] = []
    state: dict[str, object] = {"x": None, "result": None}
    lt = math.log(target)

    def f(logw: float, final: bool = False) -> float:
        w = math.exp(logw)
        r = run(prior.with_weight(w), state["x"], final)
        state["x"], state["result"] = r.mean, r
        c = float(problem.chi2(r.mean).mean())
        trace.append((w, c))
        return math.log(max(c, 1e-300)) - lt

    a_lim, b_lim = math.log(lo), math.log(hi)
    x1 = min(max(math.log(w0), a_lim), b_lim)
    f1 = f(x1)
    step = math.log(10.0) * (1 if f1 < 0 else -1)  # chi2 grows with w
    x2, f2 = x1, f1
    while (f2 < 0) == (f1 < 0) and len(trace) < iters:
        x1, f1 = x2, f2
        if (step > 0 and x1 >= b_lim) or (step < 0 and x1 <= a_lim):
            bound = "upper" if step > 0 else "lower"
            f(x1, final=True)
            return math.exp(x1), trace, bound, state["result"]
        x2 = min(max(x1 + step, a_lim), b_lim)
        f2 = f(x2)
    a, fa, b, fb = (x1, f1, x2, f2) if x1 < x2 else (x2, f2, x1, f1)
    side = 0
    while len(trace) < iters and min(abs(fa), abs(fb)) > math.log1p(rtol) and fa < 0 < fb:
        m = b - fb * (b - a) / (fb - fa)  # regula falsi in (log w, log chi2)
        fm = f(m)
        if fm < 0:
            a, fa = m, fm
            if side == -1:
                fb /= 2  # Illinois: keep the stale end from stalling the secant
            side = -1
        else:
            b, fb = m, fm
            if side == 1:
                fa /= 2
            side = 1
    w, _ = min(trace, key=lambda t: abs(math.log(max(t[1], 1e-300)) - lt))
    f(math.log(w), final=True)
    return w, trace, None, state["result"]
