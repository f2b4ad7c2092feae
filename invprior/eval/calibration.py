"""Calibration of a sampler's uncertainty: coverage curves and split-conformal recalibration.

Intervals are ``mean ± q·std`` per pixel. Uncalibrated, ``q`` is the Gaussian quantile ``z_p`` of
the nominal level ``p``; ``calibrate`` fits ``q_p`` on a calibration set of solved problems of one
kind (same method, same operator) so that held-out coverage reaches ``p``: the split-conformal
quantile of the scores ``|x - mean| / std`` pooled over the pixels of the calibration problems,
at rank ``⌈(N + 1) p⌉`` of ``N`` scores. The guarantee is marginal over pixels and problems drawn
like the calibration ones; it does not hold per pixel, nor under operator or data shift.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .._checks import InvpriorError

__all__ = ["LEVELS", "MIN_CALIBRATION_PROBLEMS", "Calibration", "calibrate", "coverage_curve", "interval_scores"]

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
MIN_CALIBRATION_PROBLEMS = 10
_EPS = 1e-8


def _z(p: float) -> float:
    return math.sqrt(2) * float(torch.special.erfinv(torch.tensor(p, dtype=torch.float64)))


def interval_scores(mean: torch.Tensor, std: torch.Tensor | None, truth: torch.Tensor) -> torch.Tensor:
    """``|truth - mean| / std`` per entry, flattened (the conformity score of ``mean ± q std``)."""
    if std is None:
        raise InvpriorError("coverage and calibration need samples with a std; this result is a point estimate")
    if mean.shape != truth.shape:
        raise InvpriorError(f"the result's mean {tuple(mean.shape)} does not match the truth {tuple(truth.shape)}")
    return ((truth.double() - mean.double()).abs() / (std.double() + _EPS)).reshape(-1)


def coverage_curve(
    mean: torch.Tensor, std: torch.Tensor | None, truth: torch.Tensor, levels: Sequence[float] = LEVELS,
    q: Sequence[float] | None = None,
) -> dict[str, list[float] | float]:  # fmt: skip
    """Nominal against empirical coverage of ``mean ± q_p std`` (``q_p = z_p`` unless given), and the
    calibration error: the mean of ``|empirical - nominal|`` over the levels."""
    for p in levels:
        if not 0 < p < 1:
            raise InvpriorError(f"levels must lie in (0, 1), got {p}")
    s = interval_scores(mean, std, truth)
    qs = [_z(p) for p in levels] if q is None else list(q)
    emp = [float((s <= qq).double().mean()) for qq in qs]
    err = sum(abs(e - p) for e, p in zip(emp, levels, strict=True)) / len(levels)
    return {"nominal": list(levels), "empirical": emp, "calibration_error": err}


def _signature(problem) -> tuple:
    """What makes two problems "of the same kind": the operator (its type, shapes, and its response to
    a fixed random probe, so that two masks or matrices of one type differ) and the noise level."""
    A = problem.operator
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = A(torch.randn((1, *A.in_shape), generator=g, dtype=torch.float64))
    probe = hashlib.sha256(torch.round(torch.view_as_real(z) if z.is_complex() else z, decimals=6).numpy()
                           .tobytes()).hexdigest()[:16]  # fmt: skip
    return (type(A).__name__, A.name, tuple(A.in_shape), tuple(A.out_shape), problem.sigma, probe)


@dataclass
class Calibration:
    """A fitted recalibration: ``q[p]`` per nominal level, for one method on one kind of problem.

    ``before``/``after``: coverage on the calibration set itself; ``evaluate`` measures held-out
    coverage before and after.
    """

    method: str
    operator: tuple
    n_problems: int
    levels: tuple[float, ...]
    q: dict[float, float]
    coverage_before: dict[float, float] = field(default_factory=dict)

    def quantile(self, level: float) -> float:
        if level not in self.q:
            raise InvpriorError(f"level {level} was not calibrated; calibrated: {list(self.q)}")
        return self.q[level]

    def scale(self, level: float = 0.9) -> float:
        """How many times wider than the Gaussian ``z_p std`` the calibrated interval is."""
        return self.quantile(level) / _z(level)

    def before(self, level: float = 0.9) -> float:
        return self.coverage_before[level]

    def interval(self, result, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """The recalibrated ``level`` interval ``(lo, hi)`` of a result."""
        if result.std is None:
            raise InvpriorError("a point estimate has no interval to recalibrate")
        q = self.quantile(level)
        return result.mean - q * result.std, result.mean + q * result.std

    def _check(self, results, problems) -> None:
        for r, pb in zip(results, problems, strict=True):
            if r.method and self.method and r.method != self.method:
                raise InvpriorError(f"this calibration is for {self.method}, not {r.method}")
            if _signature(pb) != self.operator:
                raise InvpriorError(
                    f"this calibration was fitted on {self.operator[1]} (noise {self.operator[4]}), not on "
                    f"{pb.operator.name} (noise {pb.sigma}): calibrate on problems of the same kind"
                )

    def evaluate(self, results, problems, truths=None) -> dict[str, dict[float, float]]:
        """Held-out coverage per level before (Gaussian ``z_p``) and after (``q_p``) recalibration."""
        self._check(results, problems)
        s = torch.cat([interval_scores(r.mean, r.std, t) for r, t in zip(results, _truths(problems, truths),
                                                                           strict=True)])  # fmt: skip
        return {
            "before": {p: float((s <= _z(p)).double().mean()) for p in self.levels},
            "after": {p: float((s <= self.q[p]).double().mean()) for p in self.levels},
        }


def _truths(problems, truths):
    if truths is not None:
        return list(truths)
    out = []
    for pb in problems:
        if pb.truth is None:
            raise InvpriorError("calibration needs the true images: problems made by ip.simulate, or truths=")
        out.append(pb.truth)
    return out


def calibrate(
    results: Sequence, problems: Sequence, truths: Sequence[torch.Tensor] | None = None,
    levels: Sequence[float] = LEVELS,
) -> Calibration:  # fmt: skip
    """Fit split-conformal interval widths on solved problems (one ``Result`` per ``Problem``).

    Needs at least ``MIN_CALIBRATION_PROBLEMS`` problems (batch elements count), all of the same
    operator and noise level, solved by one method with samples.
    """
    results, problems = list(results), list(problems)
    if len(results) != len(problems):
        raise InvpriorError(f"{len(results)} results for {len(problems)} problems; give one result per problem")
    n = sum(pb.batch for pb in problems)
    if n < MIN_CALIBRATION_PROBLEMS:
        raise InvpriorError(
            f"calibration needs at least {MIN_CALIBRATION_PROBLEMS} solved problems, got {n}: "
            "with fewer the fitted widths are noise"
        )
    sigs = {_signature(pb) for pb in problems}
    if len(sigs) > 1:
        names = sorted({f"{s[1]} (noise {s[4]})" for s in sigs})
        raise InvpriorError(f"calibration problems must share one operator and noise level, got: {', '.join(names)}")
    methods = {r.method for r in results if r.method}
    if len(methods) > 1:
        raise InvpriorError(f"calibration results must come from one method, got {sorted(methods)}")
    s = torch.cat([interval_scores(r.mean, r.std, t) for r, t in zip(results, _truths(problems, truths),
                                                                       strict=True)]).sort().values  # fmt: skip
    N = len(s)
    q = {}
    for p in levels:
        k = min(N, math.ceil((N + 1) * p))
        q[p] = float(s[k - 1])
    before = {p: float((s <= _z(p)).double().mean()) for p in levels}
    return Calibration(next(iter(methods), ""), sigs.pop(), n, tuple(levels), q, before)
