"""Pieces every iterative solver shares: initial estimate, data-term Lipschitz constant, stopping, traces."""

from __future__ import annotations

import torch
from tqdm import tqdm

from .._checks import InvpriorError, NonFiniteResultError
from ..operators import GaussianNoise, LinearOperator, Problem

__all__ = [
    "Progress",
    "bar",
    "data_lipschitz",
    "initial_estimate",
    "objective",
    "prior_grad",
    "prior_value",
    "prox_kwargs",
    "rel_change",
    "x0_or_default",
]


def initial_estimate(problem: Problem) -> torch.Tensor:
    """A cheap, sensible start: ``y`` (same-shape operators), ``A^+ y`` / FBP, else ``A^T y`` rescaled;
    images are clipped to [0, 1]."""
    A, y = problem.operator, problem.y
    with torch.no_grad():
        if isinstance(A, LinearOperator):
            if A.in_shape == A.out_shape and not A.complex_output:
                x = y.clone()
            elif A.has_pinv:
                x = A.pinv(y)
            else:
                x = A.T(y) / max(A.norm() ** 2, 1e-12)
        else:
            x = torch.full(problem.x_shape, 0.5, dtype=problem.dtype, device=y.device)
    return x.clamp(0, 1) if problem.is_image else x


def x0_or_default(problem: Problem, x0: torch.Tensor | None) -> torch.Tensor:
    if x0 is None:
        return initial_estimate(problem)
    if tuple(x0.shape) != problem.x_shape:
        raise InvpriorError(f"x0 has shape {tuple(x0.shape)}, expected {problem.x_shape}")
    return x0.detach().to(problem.dtype).clone()


def data_lipschitz(problem: Problem) -> float:
    """Lipschitz constant of ``∇ -log p(y | x)``: ``||A||² / sigma²`` (Gaussian noise, linear A)."""
    if isinstance(problem.noise, GaussianNoise) and isinstance(problem.operator, LinearOperator):
        if problem.noise.sigma == 0:
            raise InvpriorError("noiseless data (sigma = 0): give a small noise level")
        return problem.operator.norm() ** 2 / problem.noise.sigma**2
    raise InvpriorError("no global Lipschitz constant for this likelihood; use a solver with backtracking")


def prior_value(prior, x: torch.Tensor) -> torch.Tensor:
    """``R(x)`` per batch element: a regulariser's ``value``, or ``-log p`` of a density prior."""
    return prior.value(x) if hasattr(prior, "value") else -prior.log_prob(x)


def prior_grad(prior, x: torch.Tensor) -> torch.Tensor:
    """``∇R(x)``: a regulariser's ``grad``, or ``-score`` of a density prior (e.g. a Gaussian mixture)."""
    return prior.grad(x) if hasattr(prior, "grad") else -prior.score(x, 0.0)


def prox_kwargs(prior) -> dict:
    """``{"warm": {}}`` when the prior's ``prox`` can be warm-started (TV), else ``{}``; checked once."""
    import inspect

    return {"warm": {}} if "warm" in inspect.signature(prior.prox).parameters else {}


def objective(problem: Problem, prior, x: torch.Tensor) -> float:
    """``-log p(y | x) + R(x)`` summed over the batch."""
    with torch.no_grad():
        v = problem.nll(x)
        if prior is not None and (hasattr(prior, "value") or hasattr(prior, "log_prob")):
            v = v + prior_value(prior, x)
    return float(v.sum())


def rel_change(x_new: torch.Tensor, x_old: torch.Tensor) -> float:
    """Largest over the batch of ``||x_new - x_old|| / max(||x_old||, 1e-12)``."""
    num = (x_new - x_old).flatten(1).norm(dim=1)
    den = x_old.flatten(1).norm(dim=1).clamp_min(1e-12)
    return float((num / den).max())


class Progress:
    """A solver loop's progress bar and watchdog: ``update(x)`` counts a step and, given the iterate,
    stops the run at the first step whose values are NaN or Inf (an error naming the method and the
    step, instead of a NaN result at the end)."""

    def __init__(self, total: int, desc: str, progress: bool):
        self.desc, self.total, self.n = desc, total, 0
        self._bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()

    def update(self, x: torch.Tensor | None = None) -> None:
        self.n += 1
        self._bar.update()
        if x is not None and not bool(torch.isfinite(x).all()):
            raise NonFiniteResultError(
                f"{self.desc} produced NaN or Inf values at step {self.n} of {self.total}; the step size may be "
                "too large for this problem, or the prior/operator returned non-finite values"
            )

    def set_postfix(self, *args, **kwargs) -> None:
        self._bar.set_postfix(*args, **kwargs)


def bar(total: int, desc: str, progress: bool) -> Progress:
    return Progress(total, desc, progress)
