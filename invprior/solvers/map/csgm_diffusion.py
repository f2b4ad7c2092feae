"""CSGM through a diffusion sampler: optimise the starting noise of a deterministic K-step sampler
so that its output fits the data (the survey's "optimisation through the sampler" family; e.g.
Chung et al.'s latent optimisation and DMPlug, Wang et al. 2024, arXiv:2405.16749).

The sampler ``S_K`` maps ``x_T = sigma_max · z`` to an image by K deterministic steps in the sigma
view (Euler/DDIM, or Heun). The objective over ``z`` is

    -log p(y | S_K(z)) + lam/2 ||z||²        (prior="norm": the N(0, I) log-density of z)

or the data term alone with ``z`` projected back to the sphere ``||z|| = sqrt(d)`` after every step
(prior="sphere", where almost all of N(0, I)'s mass lies). With ``noise_steps = J > 0`` the first J
steps are ancestral (eta = 1) and their injected noises are optimised as well (same prior).
Gradient checkpointing over the K steps keeps memory at about one network pass per step: each
step's activations are recomputed during the backward pass instead of stored.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from ..._checks import InvpriorError, make_generator
from ...operators import Problem
from ...priors.diffusion import Diffusion
from ...result import Result
from ..registry import register
from .latent import _best_of_restarts, _optimise, _repeat

__all__ = ["csgm_diffusion", "deterministic_sample"]


def deterministic_sample(prior: Diffusion, z: torch.Tensor, steps: int, solver: str = "euler",
                         noises: list[torch.Tensor] | None = None,
                         checkpointed: bool = True) -> torch.Tensor:  # fmt: skip
    """``S_K(z)``: K steps from ``x = sigma_max z`` to sigma 0 (``prior.schedule(steps)``), differentiable
    in ``z`` (and in ``noises``: one per ancestral step at the start, each like ``z``)."""
    sig = prior.schedule(steps).tolist()
    noises = noises or []
    x = sig[0] * z

    def step(x: torch.Tensor, k: int, e: torch.Tensor | None) -> torch.Tensor:
        s, s_next = sig[k], sig[k + 1]
        x0 = prior.denoise(x, s)
        if e is not None and s_next > 0:  # ancestral step (eta = 1) with the given noise
            up = math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2)
            down = math.sqrt(s_next**2 - up**2)
            return x0 + down * (x - x0) / s + up * e
        d = (x - x0) / s
        x_next = x + (s_next - s) * d
        if solver == "heun" and s_next > 0:
            d2 = (x_next - prior.denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d2)
        return x_next

    for k in range(steps):
        e = noises[k] if k < len(noises) else None
        if checkpointed and torch.is_grad_enabled():
            x = checkpoint(step, x, k, e, use_reentrant=False)
        else:
            x = step(x, k, e)
    return x


@register("csgm_diffusion", family="map", needs=("diffusion",),
          reference="DMPlug, Wang et al. 2024, arXiv:2405.16749; survey arXiv:2410.00083")  # fmt: skip
def csgm_diffusion(
    problem: Problem,
    prior,
    *,
    steps: int = 10,
    solver: str = "euler",
    prior_term: str = "norm",
    lam: float = 1.0,
    noise_steps: int = 0,
    restarts: int = 4,
    iters: int = 100,
    lr: float = 0.05,
    optimizer: str = "adam",
    checkpointed: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Optimise the initial noise ``z`` of a deterministic ``steps``-step sampler (``solver`` euler =
    DDIM, or heun) so that ``A(S_K(z))`` fits ``y`` (see the module docstring for the objective and
    ``prior_term``: "norm" or "sphere"). ``restarts`` random starts run as one batch; the lowest
    objective wins, ``Result.std`` is the spread between restarts (a cheap uncertainty, not a
    posterior), ``samples`` all restarts. ``iters`` optimiser steps (Adam with cosine decay, or
    L-BFGS), each costing one forward and one backward pass through the K steps (plus one
    recomputed forward with ``checkpointed``); ``diagnostics.nfe`` counts network forwards
    (recomputations included) plus backwards.
    """
    if not isinstance(prior, Diffusion):
        raise InvpriorError(f"csgm_diffusion needs a Diffusion prior, got {type(prior).__name__}")
    if solver not in ("euler", "heun"):
        raise InvpriorError(f"solver must be 'euler' (DDIM) or 'heun', got {solver!r}")
    if prior_term not in ("norm", "sphere"):
        raise InvpriorError(f"prior_term must be 'norm' or 'sphere', got {prior_term!r}")
    if prior_term == "sphere" and optimizer != "adam":
        raise InvpriorError("prior_term='sphere' runs with optimizer='adam' (a projected gradient method)")
    if not 0 <= noise_steps < steps:
        raise InvpriorError(f"noise_steps must be in [0, steps), got {noise_steps} with steps={steps}")
    if prior_term == "norm" and not (isinstance(lam, (int, float)) and lam >= 0):
        raise InvpriorError(f"lam must be >= 0, got {lam!r}")
    g = make_generator(seed)
    k = restarts
    n = k * problem.batch
    big = _repeat(problem, k)
    shape = (n, *prior.shape)
    z = torch.randn(shape, generator=g, dtype=problem.dtype).requires_grad_(True)
    es = [torch.randn(shape, generator=g, dtype=problem.dtype).requires_grad_(True) for _ in range(noise_steps)]
    params = [z, *es]
    d = math.prod(prior.shape)
    nfe0 = prior.nfe
    calls = [0, 0]  # objective evaluations, of which with a backward pass

    def objective() -> torch.Tensor:
        calls[0] += 1
        calls[1] += torch.is_grad_enabled()
        x = deterministic_sample(prior, z, steps, solver, es, checkpointed)
        loss = big.nll(x)
        if prior_term == "norm":
            loss = loss + 0.5 * lam * sum((p**2).flatten(1).sum(1) for p in params)
        return loss

    def project() -> None:
        if prior_term == "sphere":
            with torch.no_grad():
                for p in params:
                    p.mul_(
                        math.sqrt(d) / p.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * len(prior.shape)))
                    )

    project()
    trace = _optimise(params, objective, iters, lr, optimizer, "csgm_diffusion", progress,
                      after_step=project if prior_term == "sphere" else None)  # fmt: skip
    with torch.no_grad():
        losses = objective()
        xs = deterministic_sample(prior, z, steps, solver, es, checkpointed=False)
    backward = calls[1] * (2 * steps - 1 if solver == "heun" else steps)  # a backward per differentiated forward
    r = _best_of_restarts(problem, xs, z.detach().flatten(1), losses, k, trace, "csgm_diffusion")
    r.diagnostics.nfe = prior.nfe - nfe0 + backward
    r.diagnostics.extra.update({"steps": steps, "solver": solver, "prior_term": prior_term,
                                "noise_steps": noise_steps, "objective_evals": calls[0]})  # fmt: skip
    return r
