"""Where a diffusion sampler's time goes (``invprior bench speed``).

The prior's network is wrapped so that every forward call is timed, and its backward passes too:
two identity autograd nodes mark the network's input and output, and the time between the
output's backward and the input's backward is the network's share of every VJP. A sampler's
**overhead** is the rest of its wall time (operator applications, SVD products, CG, random
numbers, Python): ``1 - network / total``.
"""

from __future__ import annotations

import time

import torch

from ..data import dataset
from ..operators import simulate
from ..priors import Diffusion
from ..solvers import solve
from .bench_diffusion import SAMPLERS, make_operator

__all__ = ["DEFAULT", "run", "timed"]

DEFAULT = (*SAMPLERS, "tds", "mcgdiff", "fps_smc")  # SMC at their defaults: n_samples runs of 16 particles


class _Clock:
    def __init__(self):
        self.forward = 0.0
        self.backward = 0.0
        self._bwd_start: list[float] = []


class _Mark(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clock, is_output):
        ctx.clock, ctx.is_output = clock, is_output
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        if ctx.is_output:
            ctx.clock._bwd_start.append(time.perf_counter())
        elif ctx.clock._bwd_start:
            ctx.clock.backward += time.perf_counter() - ctx.clock._bwd_start.pop()
        return g, None, None


def timed(prior: Diffusion) -> tuple[Diffusion, _Clock]:
    """A copy of ``prior`` whose network time (forward and backward) is accumulated in the clock."""
    clock = _Clock()
    inner = prior._D

    def D(x, sigma):
        grad = torch.is_grad_enabled() and x.requires_grad
        xin = _Mark.apply(x, clock, False) if grad else x
        t0 = time.perf_counter()
        out = inner(xin, sigma)
        clock.forward += time.perf_counter() - t0
        return _Mark.apply(out, clock, True) if grad else out

    out = Diffusion(D, prior.sigma_min, prior.sigma_max, prior.shape, prior.rho, prior.name)
    return out, clock


def run(data: str = "shapes", task: str = "inpaint", n_samples: int = 16, samplers=DEFAULT,
        steps: int | None = None) -> list[dict]:  # fmt: skip
    from .. import zoo

    prior = zoo.load(f"diffusion-{data}")
    x = dataset(data, "test")[:1]
    problem = simulate(make_operator(task, tuple(x.shape)), x, 0.05, seed=0)
    rows = []
    for name in samplers:
        p, clock = timed(prior)
        opts = {"steps": steps} if steps else {}
        solve(problem, p, method=name, n_samples=2, seed=0, **opts)  # warm-up (allocations, caches)
        p, clock = timed(prior)
        t0 = time.perf_counter()
        r = solve(problem, p, method=name, n_samples=n_samples, seed=0, **opts)
        total = time.perf_counter() - t0
        net = clock.forward + clock.backward
        it = max(r.diagnostics.iterations, 1)
        rows.append({
            "sampler": name, "steps": it, "NFE": r.diagnostics.nfe, "ms / step": 1e3 * total / it,
            "network fwd ms / step": 1e3 * clock.forward / it, "network bwd ms / step": 1e3 * clock.backward / it,
            "overhead %": 100 * (1 - net / total),
        })  # fmt: skip
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()})
    return rows
