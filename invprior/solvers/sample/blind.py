"""Blind deblurring: the blur kernel is unknown and estimated with the image.

- ``blind_dps`` follows BlindDPS (Chung et al., CVPR 2023, arXiv:2211.10656): DPS on the image and,
  in parallel, on the kernel: either a reverse diffusion under the learned kernel prior
  (``kernel="learned"``, the zoo's ``diffusion-kernels``, as in the paper) or Adam on the parameters
  of a parametric kernel (anisotropic Gaussian or linear motion, ``ip.operators.kernels``).
- ``blind_reddiff``: "Blind RED-diff" of the survey (arXiv:2410.00083): RED-diff's variational
  objective optimised jointly over the image and the kernel (a parametric kernel, or a kernel image
  regularised by the learned kernel prior's own RED-diff term).
- ``blind_tv`` (``ip.solvers.map``): the classical baseline, alternating TV-regularised image
  solves and projected-gradient kernel updates (non-negative, sums to 1) with a decreasing TV
  weight, after Perrone & Favaro (ECCV 2014).

All return one kernel per posterior sample: ``diagnostics.extra["kernel"]`` (per measurement, the
mean over its samples), ``["kernels"]``, ``["fit_chi2"]`` (χ² of the mean under its estimated
kernel). Through ``ip.solve``, ``diagnostics.chi2`` and, for a single measurement, ``result.trust``
judge the fit under the estimated kernel (the problem's own ``Blur`` only gives the kernel size).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from ..._checks import InvpriorError
from ...operators import Blur, Problem
from ...operators.kernels import blur_batch, check_kernel, gaussian_kernel, image_to_kernel, motion_kernel
from ...priors.diffusion import Diffusion
from ...result import Result
from .._common import bar
from ..registry import register
from .diffusion import _ancestral, _finish, _start, dps, reddiff

__all__ = ["blind_dps", "blind_reddiff"]

KERNEL_MODELS = ("gaussian", "motion", "learned")


def _kernels(kind: str, theta: torch.Tensor, size: int) -> torch.Tensor:
    """``(n, size, size)`` kernels from ``(n, 3)`` log-Cholesky Gaussian or ``(n, 2)`` motion parameters."""
    if kind == "gaussian":
        out = []
        for a, b, c in theta:
            L = torch.stack([torch.stack([a.exp(), torch.zeros_like(a)]), torch.stack([b, c.exp()])])
            out.append(gaussian_kernel(L @ L.T, size))
        return torch.stack(out)
    return torch.stack([motion_kernel((size - 1) * torch.sigmoid(t0), t1, size) for t0, t1 in theta])


def _theta0(kind: str, n: int, init_width: float) -> torch.Tensor:
    """Initial parametric kernel parameters: isotropic Gaussian of std ``init_width`` px, or motion of
    a quarter of the kernel size at 0°."""
    if kind == "gaussian":
        t = torch.tensor([math.log(init_width), 0.0, math.log(init_width)], dtype=torch.float64)
    else:
        t = torch.tensor([math.log(1 / 3), 0.0], dtype=torch.float64)  # sigmoid -> length (size-1)/4
    return t.repeat(n, 1).requires_grad_(True)


def _kernel_prior(kernel_prior) -> Diffusion:
    if isinstance(kernel_prior, str):
        from ...zoo import load

        kernel_prior = load(kernel_prior)
    if not isinstance(kernel_prior, Diffusion):
        what = type(kernel_prior).__name__
        raise InvpriorError(f"kernel_prior must be a diffusion prior on kernel images, got {what}")
    c, h, w = kernel_prior.shape
    if c != 1 or h != w or h % 2 == 0:
        raise InvpriorError(f"a kernel prior makes 1xSxS images with S odd, this one makes {kernel_prior.shape}")
    return kernel_prior


def _setup(problem: Problem, name: str, kernel: str, kernel_size: int | None, kernel_prior, fixed_kernel):
    """Checks shared by the blind samplers; returns (kernel size, kernel prior or None, fixed kernel or None)."""
    A = problem.operator
    if not isinstance(A, Blur):
        raise InvpriorError(f"{name} estimates a blur kernel: give a Blur operator, got {A.name}")
    if kernel not in KERNEL_MODELS:
        raise InvpriorError(f"kernel must be one of {', '.join(KERNEL_MODELS)}, got {kernel!r}")
    side = min(A.in_shape[-2:])
    if fixed_kernel is not None:
        return None, None, check_kernel(fixed_kernel, A.in_shape, "fixed_kernel")
    kp = None
    if kernel == "learned":
        kp = _kernel_prior(kernel_prior)
        size = kp.shape[-1]
        if kernel_size not in (None, size):
            raise InvpriorError(f"the kernel prior makes {size}x{size} kernels; kernel_size {kernel_size} differs")
    else:
        size = kernel_size or max(A.kernel.shape) | 1  # odd
    if size % 2 == 0 or size < 3:
        raise InvpriorError(f"kernel_size must be odd and >= 3, got {size}")
    if size > side:
        raise InvpriorError(f"the {size}x{size} kernel is larger than the {side}-pixel image side")
    return size, kp, None


def _oracle(problem: Problem, fk: torch.Tensor) -> Problem:
    return Problem(Blur(problem.operator.in_shape, fk), problem.y, problem.noise, truth=problem.truth)


@register("blind_dps", family="sample", needs=("blur", "diffusion"),
          reference="Chung et al. 2023 (BlindDPS), arXiv:2211.10656")  # fmt: skip
def blind_dps(
    problem: Problem,
    prior,
    *,
    kernel: str = "gaussian",
    kernel_size: int | None = None,
    kernel_prior="diffusion-kernels",
    kernel_zeta: float = 1.0,
    init_width: float = 1.0,
    kernel_lr: float = 0.01,
    fixed_kernel: torch.Tensor | None = None,
    steps: int = 200,
    n_samples: int = 16,
    zeta: float = 1.0,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """DPS on the image and on the kernel together. With ``x0 = D(x_t, sigma_t)``, the current kernel
    ``k`` of each sample and ``r = y - k * x0``:

        x_{t+1} = ancestral_step(x_t, x0) - zeta / ||r|| · ∇_{x_t} ||r||²

    and for the kernel, by ``kernel``:

    - ``"learned"`` (BlindDPS): a second reverse diffusion on the kernel image ``z_t`` under
      ``kernel_prior`` (default: the zoo's ``diffusion-kernels``, 15×15), ``k = normalise(D_k(z_t))``,
      ``z_{t+1} = ancestral_step(z_t, D_k(z_t)) - kernel_zeta / ||r|| · ∇_{z_t} ||r||²``;
    - ``"gaussian"`` (anisotropic, log-Cholesky parameters, started isotropic with std ``init_width``
      px) or ``"motion"`` (length and angle): an Adam step (rate ``kernel_lr``) on ``||r||``.

    ``kernel_size``: odd side of a parametric kernel (default: the problem's ``Blur`` kernel size, the
    only thing read from it). ``fixed_kernel``: skip the estimation (the non-blind oracle; then this
    is exactly ``dps`` with that kernel). ``kernel_zeta = 1``, ``kernel_lr = 0.01`` won on the
    validation split (docs/results/blind-tuning.md).
    """
    size, kp, fk = _setup(problem, "blind_dps", kernel, kernel_size, kernel_prior, fixed_kernel)
    if fk is not None:  # the non-blind oracle: DPS itself with that kernel
        r = dps(_oracle(problem, fk), prior, steps=steps, n_samples=n_samples, zeta=zeta, eta=eta, seed=seed,
                progress=progress)  # fmt: skip
        return _with_kernels(r, problem, fk.expand(n_samples * problem.batch, -1, -1), n_samples, [])
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    n = y.shape[0]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    if kp is not None:
        z = kp.sample_prior_noise(n, g, x.dtype)
        ksigmas = kp.schedule(steps).tolist()
    else:
        theta = _theta0(kernel, n, init_width)
        opt = torch.optim.Adam([theta], lr=kernel_lr)
    with bar(steps, "blind_dps", progress) as pb:
        for i, (sigma, sigma_next) in enumerate(pairwise(sigmas)):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = prior.denoise(xg, sigma)
                if kp is not None:
                    zg = z.detach().requires_grad_(True)
                    z0 = kp.denoise(zg, ksigmas[i])
                    k = image_to_kernel(z0[:, 0])
                    var = zg
                else:
                    k, var = _kernels(kernel, theta, size), theta
                res2 = ((y - blur_batch(x0, k)) ** 2).reshape(n, -1).sum(1)
                gx, gk = torch.autograd.grad(res2.sum(), [xg, var])
            norm = res2.detach().sqrt().clamp_min(1e-12)
            x = _ancestral(x, x0.detach(), sigma, sigma_next, eta, g) - zeta * gx / norm.reshape(-1, 1, 1, 1)
            if kp is not None:
                zn = _ancestral(z, z0.detach(), ksigmas[i], ksigmas[i + 1], eta, g)
                z = zn - kernel_zeta * gk / norm.reshape(-1, 1, 1, 1)
            else:
                theta.grad = gk / (2 * norm.reshape(-1, 1))  # the gradient of ||r||
                opt.step()
            pb.update(x)
    r = _finish(x.detach(), n_samples, B, prior, nfe0, steps)
    if kp is not None:
        return _with_kernels(r, problem, image_to_kernel(z[:, 0].detach()).to(torch.float64), n_samples, [])
    with torch.no_grad():
        ks = _kernels(kernel, theta, size)
    return _with_kernels(r, problem, ks, n_samples, theta.detach().tolist())


@register("blind_reddiff", family="sample", needs=("blur", "gaussian_noise", "diffusion"),
          reference="Mardani et al. 2023 (RED-diff), arXiv:2305.04391; blind: survey arXiv:2410.00083")  # fmt: skip
def blind_reddiff(
    problem: Problem,
    prior,
    *,
    kernel: str = "gaussian",
    kernel_size: int | None = None,
    kernel_prior="diffusion-kernels",
    kernel_lam: float = 1.0,
    init_width: float = 1.0,
    kernel_lr: float | None = None,
    fixed_kernel: torch.Tensor | None = None,
    steps: int = 100,
    n_samples: int = 16,
    lam: float = 1.0,
    lr: float = 0.03,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """RED-diff over the image ``mu`` and the kernel together: with ``x_t = mu + sigma_t eps`` and
    ``eps_hat = (x_t - D(x_t, sigma_t)) / sigma_t``, Adam (rates ``lr`` and ``kernel_lr``) on

        ||y - k * mu||² / (2 sigma_y²) + lam ⟨sg(eps_hat - eps), mu⟩ / sigma_t  [+ kernel term]

    over a descending noise schedule. ``kernel="gaussian"``/``"motion"``: ``k`` from its parameters,
    no kernel term (the family is the prior). ``kernel="learned"``: ``k = normalise(z)`` for a kernel
    image ``z`` with the same RED-diff term under ``kernel_prior`` (weight ``kernel_lam``, its own
    schedule). ``fixed_kernel``: the non-blind oracle, exactly ``reddiff`` with that kernel.
    ``kernel_lr`` (default 0.02 for a parametric kernel, 0.001 for the learned one) and
    ``kernel_lam = 1`` won on the validation split (docs/results/blind-tuning.md).
    Like RED-diff, a MAP-like estimate: the spread of the ``n_samples`` runs is not a posterior spread.
    """
    size, kp, fk = _setup(problem, "blind_reddiff", kernel, kernel_size, kernel_prior, fixed_kernel)
    if fk is not None:
        r = reddiff(_oracle(problem, fk), prior, steps=steps, n_samples=n_samples, lam=lam, lr=lr, seed=seed,
                    progress=progress)  # fmt: skip
        return _with_kernels(r, problem, fk.expand(n_samples * problem.batch, -1, -1), n_samples, [])
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    n = y.shape[0]
    sigmas = prior.schedule(steps).tolist()[:-1]
    nfe0 = prior.nfe
    s2y = float(problem.sigma) ** 2  # type: ignore[arg-type]
    mu = prior.denoise(x, sigmas[0]).detach().requires_grad_(True)
    if kp is not None:
        ksigmas = kp.schedule(steps).tolist()[:-1]
        z = kp.denoise(kp.sample_prior_noise(n, g, x.dtype), ksigmas[0]).detach().requires_grad_(True)
        var = z
    else:
        var = theta = _theta0(kernel, n, init_width)
    if kernel_lr is None:
        kernel_lr = 0.001 if kp is not None else 0.02
    opt = torch.optim.Adam([{"params": [mu], "lr": lr}, {"params": [var], "lr": kernel_lr}])
    trace = []
    with bar(steps, "blind_reddiff", progress) as pb:
        for i, sigma in enumerate(sigmas):
            e = torch.randn(mu.shape, generator=g, dtype=mu.dtype)
            with torch.no_grad():
                xt = mu + sigma * e
                eps_hat = (xt - prior.denoise(xt, sigma)) / sigma
                if kp is not None:
                    ez = torch.randn(z.shape, generator=g, dtype=z.dtype)
                    zt = z + ksigmas[i] * ez
                    epsz_hat = (zt - kp.denoise(zt, ksigmas[i])) / ksigmas[i]
            with torch.enable_grad():
                k = image_to_kernel(z[:, 0]) if kp is not None else _kernels(kernel, theta, size)
                r = y - blur_batch(mu, k)
                data = (r**2).reshape(n, -1).sum(1) / (2 * s2y)
                loss = data + ((eps_hat - e) * mu).reshape(n, -1).sum(1) * (lam / sigma)
                if kp is not None:
                    loss = loss + ((epsz_hat - ez) * z).reshape(n, -1).sum(1) * (kernel_lam / ksigmas[i])
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
            opt.step()
            trace.append(float(data.detach().mean()))
            pb.update(mu.detach())
    res = _finish(mu.detach(), n_samples, B, prior, nfe0, steps)
    res.diagnostics.loss_trace = trace
    with torch.no_grad():
        ks = image_to_kernel(z[:, 0]).to(torch.float64) if kp is not None else _kernels(kernel, theta, size)
    return _with_kernels(res, problem, ks, n_samples, [] if kp is not None else theta.detach().tolist())


def _with_kernels(r: Result, problem: Problem, ks: torch.Tensor, n_samples: int, params: list) -> Result:
    """Attach the kernels (per sample and their mean per measurement) and the χ² of the mean under
    each measurement's own mean kernel."""
    ks = ks.detach().to(torch.float64).reshape(n_samples, problem.batch, *ks.shape[-2:])
    k_mean = ks.mean(0)
    with torch.no_grad():
        res = problem.y - blur_batch(r.mean, k_mean)
        fit = (res**2).reshape(problem.batch, -1).mean(1)
        fit = fit / float(problem.sigma) ** 2 if problem.sigma is not None else fit * float("nan")
    r.diagnostics.extra.update({"kernel": k_mean, "kernels": ks, "kernel_params": params, "fit_chi2": fit.tolist()})
    return r
