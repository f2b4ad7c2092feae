"""The particle layer of the SMC samplers (``smc.py``): resampling, ESS, float64 log-weights, chunks.

A population is ``R`` independent runs of ``N`` particles each: tensors ``(R, N, ...)``, log-weights
``(R, N)`` in float64, normalised per run (``logsumexp = 0``). Every run draws its randomness from
its own generator (``run_generators``), seeded by ``(seed, run index)`` only, so a run gives the same
bits whatever the chunk it is computed in.

Resampling schemes (Douc, Cappé & Moulines 2005, "Comparison of resampling schemes for particle
filtering"); each returns ancestor indices whose expected offspring counts are ``N w_i``:

- ``systematic`` (default): one uniform ``u``, points ``(u + j) / N``;
- ``multinomial``: ``N`` i.i.d. draws from the weights;
- ``residual``: ``floor(N w_i)`` copies of each, the rest multinomial on the residual weights.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from ..._checks import InvpriorError, NonFiniteResultError

__all__ = [
    "Population",
    "chunk_runs",
    "ess",
    "normalise",
    "resample",
    "run_generators",
]

Scheme = Literal["systematic", "multinomial", "residual"]
SCHEMES = ("systematic", "multinomial", "residual")


def run_generators(seed: int, first: int, count: int, device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per run ``first .. first + count - 1``, seeded by ``(seed, run)`` only."""
    out = []
    for r in range(first, first + count):
        g = torch.Generator(device=device)
        g.manual_seed((int(seed) * 1_000_003 + 7919 * r + 17) % (2**63 - 1))
        out.append(g)
    return out


def normalise(logw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logw - logsumexp(logw), logsumexp(logw))`` per run, in float64."""
    logw = logw.to(torch.float64)
    lse = torch.logsumexp(logw, dim=-1, keepdim=True)
    return logw - lse, lse[..., 0]


def ess(logw_normalised: torch.Tensor) -> torch.Tensor:
    """Effective sample size ``1 / sum w_i²`` per run (weights normalised)."""
    return 1.0 / torch.exp(2 * logw_normalised).sum(-1)


def _uniforms(gens: list[torch.Generator], n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.stack([torch.rand(n, generator=g, dtype=dtype) for g in gens])


def resample(logw_normalised: torch.Tensor, gens: list[torch.Generator], scheme: Scheme = "systematic") -> torch.Tensor:
    """Ancestor indices ``(R, N)`` (int64) for each run's normalised log-weights ``(R, N)``."""
    R, N = logw_normalised.shape
    w = torch.exp(logw_normalised)
    w = w / w.sum(-1, keepdim=True)
    if scheme == "systematic":
        u = _uniforms(gens, 1)  # (R, 1)
        points = (u + torch.arange(N, dtype=torch.float64)[None]) / N
        return _inverse_cdf(w, points)
    if scheme == "multinomial":
        return _inverse_cdf(w, torch.sort(_uniforms(gens, N), dim=-1).values)
    if scheme == "residual":
        copies = torch.floor(N * w).to(torch.int64)  # (R, N)
        out = torch.empty(R, N, dtype=torch.int64)
        for r in range(R):
            det = torch.repeat_interleave(torch.arange(N), copies[r])
            rest = N - det.numel()
            if rest > 0:
                res = N * w[r] - copies[r].to(torch.float64)
                res = res.clamp_min(0)
                u = torch.sort(torch.rand(rest, generator=gens[r], dtype=torch.float64)).values
                extra = _inverse_cdf((res / res.sum())[None], u[None])[0]
                det = torch.cat([det, extra])
            out[r] = det
        return out
    raise InvpriorError(f"resampling must be one of {', '.join(SCHEMES)}, got {scheme!r}")


def _inverse_cdf(w: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Indices ``i`` with ``cdf[i-1] <= point < cdf[i]`` (points sorted per row)."""
    cdf = torch.cumsum(w, dim=-1)
    cdf[..., -1] = 1.0 + 1e-12  # guard against rounding
    idx = torch.searchsorted(cdf, points.contiguous(), right=True)
    return idx.clamp_max(w.shape[-1] - 1)


def chunk_runs(runs: int, per_run_bytes: float, memory_budget: float, chunk: int | None = None) -> int:
    """How many runs to compute at once: ``chunk`` if given, else as many as ``memory_budget`` allows."""
    if chunk is not None:
        return max(1, min(int(chunk), runs))
    fit = int(memory_budget // max(per_run_bytes, 1.0))
    if fit < 1:
        raise InvpriorError(
            f"one SMC run needs about {per_run_bytes / 1e9:.3g} GB but memory_budget is {memory_budget / 1e9:.3g} GB: "
            "lower n_particles or raise memory_budget"
        )
    return max(1, min(fit, runs))


class Population:
    """Bookkeeping of one chunk of ``R`` runs: normalised log-weights, the log-evidence estimate,
    the ESS trace and the steps at which runs resampled."""

    def __init__(self, R: int, N: int, gens: list[torch.Generator], scheme: Scheme, ess_threshold: float, name: str):
        self.R, self.N, self.gens, self.scheme = R, N, gens, scheme
        self.ess_threshold = float(ess_threshold)
        self.name = name
        self.logw = torch.full((R, N), -math.log(N), dtype=torch.float64)
        self.log_z = torch.zeros(R, dtype=torch.float64)
        self.ess_trace: list[float] = []
        self.resampled: list[int] = []  # per step: how many runs resampled

    def reweight(self, log_g: torch.Tensor, step: int) -> None:
        """Multiply the weights by the incremental weights ``exp(log_g)`` ``(R, N)`` and update ``log Z``."""
        log_g = log_g.to(torch.float64).reshape(self.R, self.N)
        log_g = torch.where(torch.isnan(log_g), torch.full_like(log_g, -math.inf), log_g)
        total = self.logw + log_g
        dead = ~torch.isfinite(torch.logsumexp(total, dim=-1)) | torch.isposinf(total).any(-1)
        if bool(dead.any()):
            raise NonFiniteResultError(
                f"{self.name}: every particle's weight is zero or non-finite at step {step} in "
                f"{int(dead.sum())} of {self.R} runs (the prior or the likelihood returned NaN/Inf, or the data "
                "are impossible under the model); no sample is returned"
            )
        self.logw, lse = normalise(total)
        self.log_z = self.log_z + lse

    def maybe_resample(self) -> torch.Tensor | None:
        """Resample the runs whose ESS fell below ``ess_threshold * N``; returns the ancestors ``(R, N)``
        (identity for the runs that did not resample) or None if none did."""
        e = ess(self.logw)
        self.ess_trace.append(float((e / self.N).mean()))
        low = e < self.ess_threshold * self.N
        self.resampled.append(int(low.sum()))
        if not bool(low.any()):
            return None
        anc = torch.arange(self.N).expand(self.R, self.N).clone()
        rows = torch.nonzero(low)[:, 0].tolist()
        anc[rows] = resample(self.logw[rows], [self.gens[r] for r in rows], self.scheme)
        self.logw[rows] = -math.log(self.N)
        return anc

    def draw(self) -> torch.Tensor:
        """One particle index per run from its final weights ``(R,)`` (a single multinomial draw)."""
        u = _uniforms(self.gens, 1)
        return _inverse_cdf(torch.exp(self.logw), u)[:, 0]


def gather(x: torch.Tensor, anc: torch.Tensor) -> torch.Tensor:
    """Select ancestors: ``x`` ``(R, N, ...)``, ``anc`` ``(R, N)`` -> ``(R, N, ...)``."""
    idx = anc.reshape(*anc.shape, *([1] * (x.dim() - 2))).expand(*anc.shape, *x.shape[2:])
    return torch.gather(x, 1, idx.to(x.device))
