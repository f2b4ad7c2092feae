"""Posterior samplers with a latent diffusion prior (``ip.priors.LatentDiffusion``): the diffusion
runs on latents ``z``, the operator acts on images ``decode(z)``.

- ``psld`` (Rout et al., NeurIPS 2023, arXiv:2307.00619): DPS through the decoder plus the
  "gluing" term that asks the denoised latent to be a fixed point of encode ∘ (replace the measured
  part of the decoded image by the measurement).
- ``resample`` (Song et al., ICLR 2024, arXiv:2307.08123): hard data consistency by optimisation
  (in latent or pixel space) on some steps, then stochastic resampling back to the noise level.

Both are written in the sigma view of ``diffusion.py`` (``z_sigma = z0 + sigma eps``, latent units).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from ..._checks import InvpriorError, make_generator
from ...operators import LinearOperator, Problem
from ...priors.latent_diffusion import LatentDiffusion
from ...result import Diagnostics, Result
from .._common import bar
from ..registry import register
from .diffusion import _ancestral, _expand

__all__ = ["psld", "resample"]


def _check(prior, steps: int) -> LatentDiffusion:
    if not isinstance(prior, LatentDiffusion):
        raise InvpriorError(
            f"latent samplers need a LatentDiffusion prior (a decoder and a latent diffusion model), got "
            f"{type(prior).__name__} (load one: ip.zoo.load('ldm-shapes'))"
        )
    if steps < 1:
        raise InvpriorError(f"steps must be >= 1, got {steps}")
    return prior


def _sq(r: torch.Tensor, n: int) -> torch.Tensor:
    return (r.abs() ** 2 if r.is_complex() else r**2).reshape(n, -1).sum(1)


def _finish(z: torch.Tensor, prior: LatentDiffusion, n: int, B: int, nfe0: int, steps: int, extra=None) -> Result:
    with torch.no_grad():
        x = prior.decode(z)
    diag = Diagnostics(iterations=steps, nfe=prior.nfe - nfe0, extra=extra or {})
    return Result.from_samples(x.reshape(n, B, *x.shape[1:]), diag)


@register("psld", family="sample", needs=("latent_diffusion",), reference="Rout et al. 2023, arXiv:2307.00619")
def psld(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    zeta: float = 1.0,
    glue: float = 0.1,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Posterior sampling with latent diffusion (PSLD). With ``z0 = D(z_t, sigma_t)`` the denoised
    latent, ``x0 = decode(z0)`` and the glued image ``g = A⁺y + (I - A⁺A) x0``:

        z' = ancestral_step(z_t, z0)
        z_{t+1} = z' - zeta / ||y - A x0|| · ∇_{z_t} ||y - A x0||²
                     - glue / ||z0 - encode(g)|| · ∇_{z_t} ||z0 - encode(g)||²

    The first correction is DPS through the decoder (same step rule as ``dps``); the second is the
    paper's gluing term (their ``Aᵀy + (I - AᵀA)``, which is ``A⁺`` for the masks and subsampling
    they use), skipped with ``glue=0`` and needing a pseudo-inverse otherwise. ``zeta`` = 1 as in
    our DPS; ``glue`` = 0.1 as the paper's code (its gamma).
    """
    prior = _check(prior, steps)
    A = problem.operator
    if glue > 0 and not (isinstance(A, LinearOperator) and A.has_pinv):
        raise InvpriorError(f"psld's gluing term needs a linear operator with a pseudo-inverse ({A.name} has none); "
                            "pass glue=0 for DPS through the decoder alone")  # fmt: skip
    g = make_generator(seed, problem.y.device)
    y, B = _expand(problem, n_samples)
    n = y.shape[0]
    lat = prior.latent
    z = lat.sample_prior_noise(n, g, problem.dtype).to(y.device)
    y_pinv = A.pinv(y) if glue > 0 else None  # type: ignore[union-attr]
    sigmas = lat.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "psld", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            with torch.enable_grad():
                zg = z.detach().requires_grad_(True)
                z0 = lat.denoise(zg, sigma)
                x0 = prior.decode(z0)
                res2 = _sq(y - A._forward(x0), n)
                loss = zeta * res2 / res2.detach().sqrt().clamp_min(1e-12)
                if glue > 0:
                    glued = y_pinv + x0 - A.pinv(A._forward(x0))  # type: ignore[union-attr]
                    glue2 = _sq(z0 - prior.encode(glued), n)
                    loss = loss + glue * glue2 / glue2.detach().sqrt().clamp_min(1e-12)
                (grad,) = torch.autograd.grad(loss.sum(), zg)
            z = _ancestral(z, z0.detach(), sigma, sigma_next, eta, g) - grad
            pb.update(z)
    return _finish(z.detach(), prior, n_samples, B, nfe0, steps)


def _noise_level(problem: Problem) -> float:
    """``E ||y - A x||²`` at the truth: real degrees of freedom (complex entries count twice) × sigma²."""
    dof = problem.y[0].numel() * (2 if problem.y.is_complex() else 1)
    return dof * float(problem.sigma) ** 2  # type: ignore[arg-type]


def _fit_data(problem: Problem, y: torch.Tensor, v0: torch.Tensor, f, iters: int, lr: float, n: int) -> torch.Tensor:
    """``argmin_v ||y - A f(v)||²`` by Adam from ``v0``, stopped for each sample once its residual
    reaches the noise level (``||r||² <= m sigma²``: fitting further would fit the noise)."""
    target = _noise_level(problem)
    v = v0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=lr)
    active = torch.ones(n, dtype=torch.bool, device=v.device)
    for _ in range(iters):
        with torch.enable_grad():
            res2 = _sq(y - problem.operator._forward(f(v)), n)
            active = active & (res2.detach() > target)
            if not bool(active.any()):
                break
            opt.zero_grad(set_to_none=True)
            (res2 * active).sum().backward()
        v.grad *= active.reshape(-1, *([1] * (v.dim() - 1)))  # type: ignore[operator]
        opt.step()
    return v.detach()


def _fit_pixels(problem: Problem, y: torch.Tensor, x0: torch.Tensor, iters: int, lr: float, n: int) -> torch.Tensor:
    """Pixel-space hard data consistency from ``x0``: for a linear operator, Landweber iterations
    ``x += A^T (y - A x) / ||A||²`` (the minimal change towards the data) stopped at the noise level;
    otherwise Adam on ``||y - A x||²`` (``_fit_data``)."""
    A = problem.operator
    if not isinstance(A, LinearOperator):
        return _fit_data(problem, y, x0, lambda x: x, iters, lr, n)
    target = _noise_level(problem)
    step = 1.0 / A.norm() ** 2
    x = x0.clone()
    for _ in range(iters):
        r = y - A._forward(x)
        active = _sq(r, n) > target
        if not bool(active.any()):
            break
        g = A._adjoint(r)
        x = x + step * g * active.reshape(-1, *([1] * (x.dim() - 1)))
    return x


@register("resample", family="sample", needs=("latent_diffusion", "gaussian_noise"),
          reference="Song et al. 2024, arXiv:2307.08123")  # fmt: skip
def resample(
    problem: Problem,
    prior,
    *,
    steps: int = 50,
    n_samples: int = 16,
    every: int = 5,
    space: str = "latent",
    opt_iters: int = 100,
    lr: float = 0.05,
    gamma: float = 40.0,
    dc_sigma_max: float = 2.0,
    zeta: float = 0.15,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """ReSample: ancestral steps with a DPS correction through the decoder (``zeta``; the official
    code's scale 0.3 on the gradient of ``||y - A decode(z0)||``, i.e. 0.15 in our DPS convention;
    0 for unconditional steps); every ``every`` steps once the noise is below ``dc_sigma_max`` (and at
    the last step), hard data consistency then stochastic resampling instead.

    Hard data consistency starts from the denoised latent ``z0 = D(z_t, sigma_t)``:
    ``space="latent"`` minimises ``||y - A decode(z)||²`` over ``z`` (Adam, rate ``lr``);
    ``space="pixel"`` minimises ``||y - A x||²`` over ``x`` from ``decode(z0)`` (Landweber steps for a
    linear operator, Adam otherwise) and encodes the result. Both stop at the noise level
    (``opt_iters`` iterations at most). The fitted ``z0(y)`` and the unconditional
    step ``z'`` at ``sigma'`` are combined as in the paper's resampling, in the sigma view:

        z_{t+1} ~ N((r² z0(y) + sigma'² z') / (r² + sigma'²), r² sigma'² / (r² + sigma'²) I)

    with ``r² = gamma · sigma'² (sigma² - sigma'²) / sigma²`` (the ancestral step's variance scaled
    by ``gamma``; the paper's sigma_scale = 40).
    """
    prior = _check(prior, steps)
    if every < 1:
        raise InvpriorError(f"every must be >= 1 (steps between data-consistency passes), got {every}")
    if space not in ("latent", "pixel"):
        raise InvpriorError(f"space must be 'latent' or 'pixel', got {space!r}")
    g = make_generator(seed, problem.y.device)
    y, B = _expand(problem, n_samples)
    n = y.shape[0]
    lat = prior.latent
    z = lat.sample_prior_noise(n, g, problem.dtype).to(y.device)
    sigmas = lat.schedule(steps).tolist()
    nfe0 = prior.nfe
    passes = 0
    with bar(steps, "resample", progress) as pb:
        for k, (sigma, sigma_next) in enumerate(pairwise(sigmas)):
            dc = sigma_next == 0 or (sigma_next <= dc_sigma_max and (k + 1) % every == 0)
            if not dc and zeta > 0:  # the DPS step through the decoder between consistency passes
                with torch.enable_grad():
                    zg = z.detach().requires_grad_(True)
                    z0 = lat.denoise(zg, sigma)
                    res2 = _sq(y - problem.operator._forward(prior.decode(z0)), n)
                    (grad,) = torch.autograd.grad((res2 / res2.detach().sqrt().clamp_min(1e-12)).sum(), zg)
                z = _ancestral(z, z0.detach(), sigma, sigma_next, eta, g) - zeta * grad
                pb.update(z)
                continue
            with torch.no_grad():
                z0 = lat.denoise(z, sigma)
            if not dc:
                z = _ancestral(z, z0, sigma, sigma_next, eta, g)
                pb.update(z)
                continue
            passes += 1
            if space == "latent":
                z0y = _fit_data(problem, y, z0, prior.decode, opt_iters, lr, n)
            else:
                with torch.no_grad():
                    x0 = prior.decode(z0)
                x0y = _fit_pixels(problem, y, x0, opt_iters, lr, n)
                with torch.no_grad():
                    z0y = prior.encode(x0y)
            if sigma_next == 0:
                z = z0y
            else:
                zp = _ancestral(z, z0, sigma, sigma_next, eta, g)
                r2 = gamma * sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2
                s2 = sigma_next**2
                mean = (r2 * z0y + s2 * zp) / (r2 + s2)
                z = mean + math.sqrt(r2 * s2 / (r2 + s2)) * torch.randn(z.shape, generator=g, dtype=z.dtype,
                                                                          device=z.device)  # fmt: skip
            pb.update(z)
    return _finish(z.detach(), prior, n_samples, B, nfe0, steps, {"data_consistency_passes": passes})
