"""Blind deblurring with a diffusion prior: the blur kernel is unknown and estimated with the image.

``blind_dps`` follows BlindDPS (Chung et al., CVPR 2023, arXiv:2211.10656) with a parametric kernel
prior instead of the paper's second diffusion model: at every DPS step the same normalised
data-misfit gradient that moves the image also moves the kernel's parameters (an anisotropic
Gaussian or a linear motion, ``ip.operators.kernels``), one kernel per posterior sample.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from ..._checks import InvpriorError
from ...operators import Blur, Problem
from ...operators.kernels import blur_batch, gaussian_kernel, motion_kernel
from ...result import Result
from .._common import bar
from ..registry import register
from .diffusion import _ancestral, _finish, _start, dps

__all__ = ["blind_dps"]


def _kernels(kind: str, theta: torch.Tensor, size: int) -> torch.Tensor:
    """``(n, size, size)`` kernels from ``(n, 3)`` log-Cholesky Gaussian or ``(n, 2)`` motion parameters."""
    if kind == "gaussian":
        out = []
        for a, b, c in theta:
            L = torch.stack([torch.stack([a.exp(), torch.zeros_like(a)]), torch.stack([b, c.exp()])])
            out.append(gaussian_kernel(L @ L.T, size))
        return torch.stack(out)
    return torch.stack([motion_kernel((size - 1) * torch.sigmoid(t0), t1, size) for t0, t1 in theta])


@register("blind_dps", family="sample", needs=("blur", "diffusion"),
          reference="Chung et al. 2023 (BlindDPS), arXiv:2211.10656")  # fmt: skip
def blind_dps(
    problem: Problem,
    prior,
    *,
    kernel: str = "gaussian",
    kernel_size: int | None = None,
    init_width: float = 1.0,
    kernel_lr: float = 0.02,
    fixed_kernel: torch.Tensor | None = None,
    steps: int = 200,
    n_samples: int = 16,
    zeta: float = 1.0,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """DPS on the image and on the kernel together. With ``x0 = D(x_t, sigma_t)`` and the current
    kernel ``k_theta`` of each sample, ``r = y - k_theta * x0``:

        x_{t+1}  = ancestral_step(x_t, x0) - zeta / ||r|| · ∇_{x_t} ||r||²
        theta   <- Adam step (rate ``kernel_lr``) on ||r||

    ``kernel``: "gaussian" (anisotropic, log-Cholesky parameters, started isotropic with std
    ``init_width`` pixels) or "motion" (length and angle, started at a quarter of the kernel size and
    0°). ``kernel_size``: odd side of the estimated kernel (default: the problem's ``Blur`` kernel
    size, the only thing read from it). ``fixed_kernel``: skip the estimation (the non-blind oracle;
    then this is exactly ``dps`` with that kernel). ``diagnostics.extra["kernel"]`` holds each
    measurement's kernel averaged over its samples, ``["kernels"]`` every sample's, ``["fit_chi2"]``
    the χ² of the mean under that estimated kernel (``diagnostics.chi2`` is under the problem's own
    operator, whose kernel a blind problem does not know).
    """
    A = problem.operator
    if not isinstance(A, Blur):
        raise InvpriorError(f"blind_dps estimates a blur kernel: give a Blur operator, got {A.name}")
    if kernel not in ("gaussian", "motion"):
        raise InvpriorError(f"kernel must be 'gaussian' or 'motion', got {kernel!r}")
    size = kernel_size or max(A.kernel.shape) | 1  # odd
    if size % 2 == 0 or size < 3 or size > min(A.in_shape[-2:]):
        raise InvpriorError(f"kernel_size must be odd, >= 3 and at most the image side, got {size}")
    if fixed_kernel is not None:  # the non-blind oracle: DPS itself with that kernel
        fk = torch.as_tensor(fixed_kernel, dtype=torch.float64)
        if fk.dim() != 2 or float(fk.min()) < -1e-8 or abs(float(fk.sum()) - 1) > 1e-6:
            raise InvpriorError("fixed_kernel must be a 2-D non-negative kernel that sums to 1")
        oracle = Problem(Blur(fk, A.in_shape), problem.y, problem.noise, truth=problem.truth)
        r = dps(oracle, prior, steps=steps, n_samples=n_samples, zeta=zeta, eta=eta, seed=seed, progress=progress)
        n = n_samples * problem.batch
        return _with_kernels(r, problem, fk.expand(n, -1, -1), n_samples, [])
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    n = y.shape[0]
    if kernel == "gaussian":
        theta = torch.tensor([math.log(init_width), 0.0, math.log(init_width)], dtype=torch.float64).repeat(n, 1)
    else:
        theta = torch.tensor([math.log(1 / 3), 0.0], dtype=torch.float64).repeat(n, 1)  # length (size-1)/4
    theta.requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=kernel_lr)
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "blind_dps", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = prior.denoise(xg, sigma)
                res2 = ((y - blur_batch(x0, _kernels(kernel, theta, size))) ** 2).reshape(n, -1).sum(1)
                gx, gt = torch.autograd.grad(res2.sum(), [xg, theta])
            norm = res2.detach().sqrt().clamp_min(1e-12).reshape(-1, *([1] * (x.dim() - 1)))
            x = _ancestral(x, x0.detach(), sigma, sigma_next, eta, g) - zeta * gx / norm
            theta.grad = gt / (2 * norm.reshape(-1, 1))  # the gradient of ||r||
            opt.step()
            pb.update(x)
    r = _finish(x.detach(), n_samples, B, prior, nfe0, steps)
    with torch.no_grad():
        ks = _kernels(kernel, theta, size)
    return _with_kernels(r, problem, ks, n_samples, theta.detach().tolist())


def _with_kernels(r: Result, problem: Problem, ks: torch.Tensor, n_samples: int, params: list) -> Result:
    """Attach the kernels (per sample and their mean per measurement) and the χ² of the mean under
    each measurement's own mean kernel (``diagnostics.chi2`` is under the problem's operator)."""
    ks = ks.reshape(n_samples, problem.batch, *ks.shape[-2:])
    k_mean = ks.mean(0)
    with torch.no_grad():
        res = problem.y - blur_batch(r.mean, k_mean)
        fit = (res**2).reshape(problem.batch, -1).mean(1) / float(problem.sigma) ** 2  # type: ignore[arg-type]
    r.diagnostics.extra.update({"kernel": k_mean, "kernels": ks, "kernel_params": params, "fit_chi2": fit.tolist()})
    return r
