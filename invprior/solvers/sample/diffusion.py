"""Diffusion posterior samplers, written once in the sigma view ``x_sigma = x0 + sigma · eps``.

Each is a loop over a decreasing ``sigmas`` schedule (``prior.schedule(steps)``, ending at 0)
whose body follows the paper's algorithm; ``n_samples`` posterior draws per measurement run as
one batch. ``prior`` is a ``Diffusion`` (a zoo model, a wrapped DDPM, or a ``GaussianMixture``
through ``Diffusion.from_denoiser``: an exact denoiser, the oracle of the tests).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch

from ..._checks import InvpriorError, make_generator
from ...operators import LinearOperator, Problem, conjugate_gradient
from ...priors.diffusion import Diffusion
from ...result import Diagnostics, Result
from .._common import bar
from ..registry import register

__all__ = ["ald", "daps", "ddnm", "ddrm", "diffpir", "dps", "mm", "pigdm", "reddiff"]


def _check_prior(prior) -> Diffusion:
    if not isinstance(prior, Diffusion):
        raise InvpriorError(
            f"diffusion samplers need a Diffusion prior, got {type(prior).__name__} "
            "(wrap a denoiser with ip.priors.Diffusion.from_denoiser)"
        )
    return prior


def _expand(problem: Problem, n: int) -> tuple[torch.Tensor, int]:
    """``y`` repeated ``n`` times (sample k of measurement b at index k * B + b)."""
    B = problem.batch
    return problem.y.repeat(n, *([1] * (problem.y.dim() - 1))), B


def _finish(x: torch.Tensor, n: int, B: int, prior: Diffusion, nfe0: int, steps: int) -> Result:
    samples = x.reshape(n, B, *x.shape[1:])
    diag = Diagnostics(iterations=steps, nfe=prior.nfe - nfe0)
    return Result.from_samples(samples, diag)


def _start(problem: Problem, prior, n_samples: int, seed: int):
    """Common set-up: the checked prior, the generator, ``y`` repeated per sample, x at sigma_max."""
    prior = _check_prior(prior)
    g = make_generator(seed, problem.y.device)
    y, B = _expand(problem, n_samples)
    x = prior.sample_prior_noise(y.shape[0], g, problem.dtype).to(y.device)
    return prior, g, y, B, x


def _ancestral(x, x0_hat, sigma, sigma_next, eta, g):
    """DDIM / Euler-ancestral step from sigma to sigma_next given the denoised x0_hat (eta=1: ancestral)."""
    if sigma_next == 0:
        return x0_hat
    up = min(sigma_next, eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0)))
    down = math.sqrt(max(sigma_next**2 - up**2, 0.0))
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
    return x0_hat + down * (x - x0_hat) / sigma + up * noise


@register(
    "ddrm",
    family="sample",
    needs=("svd", "gaussian_noise", "diffusion"),
    reference="Kawar et al. 2022, arXiv:2201.11793",
)
def ddrm(
    problem: Problem,
    prior,
    *,
    steps: int = 20,
    n_samples: int = 16,
    eta: float = 1.0,
    eta_b: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Denoising diffusion restoration models, in the SVD basis ``A = U diag(s) V^T`` (VE form).

    With ``c = V^T D(x_t, sigma_t)``, ``ybar = U^T y / s`` (noise ``sigma_y / s``) and each spectral
    coefficient ``i``, one step to ``sigma'`` is

        s_i = 0:                 x'_i = c_i + sqrt(1-eta²) sigma' (x_i - c_i)/sigma_t + eta sigma' eps
        sigma' < sigma_y/s_i:    x'_i = c_i + sqrt(1-eta²) sigma' (ybar_i - c_i)/(sigma_y/s_i) + eta sigma' eps
        sigma' >= sigma_y/s_i:   x'_i = (1-eta_b) c_i + eta_b ybar_i + sqrt(sigma'² - eta_b² sigma_y²/s_i²) eps

    (Kawar, Elad, Ermon & Song 2022, eq. 7-8; the paper uses eta = 0.85, eta_b = 1; our default
    eta = 1 won on validation, docs/results/diffusion-tuning.md).
    """
    prior = _check_prior(prior)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    svd = A.svd()
    g = make_generator(seed, problem.y.device)
    y, B = _expand(problem, n_samples)
    dt = problem.dtype
    s = svd.singular_values(y.real if y.is_complex() else y).to(dt)
    obs = s > 1e-12 * float(s.max())
    s_safe = torch.where(obs, s, torch.ones_like(s))
    ybar = torch.where(obs, svd.Ut(y).to(dt) / s_safe, torch.zeros_like(s))
    noise_lvl = torch.where(obs, problem.sigma / s_safe, torch.full_like(s, math.inf))  # type: ignore[operator]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    n = y.shape[0]
    eps = torch.randn((n, A.n), generator=g, dtype=dt, device=y.device)
    s0 = sigmas[0]
    init_obs = obs & (s0 > noise_lvl)
    xb = torch.where(init_obs, ybar + torch.sqrt((s0**2 - noise_lvl**2).clamp_min(0)) * eps, s0 * eps)
    with bar(steps, "ddrm", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            x0 = prior.denoise(svd.V(xb), sigma)
            c = svd.Vt(x0)
            if sigma_next == 0:
                xb = c
                pb.update(xb)
                break
            e = torch.randn(xb.shape, generator=g, dtype=dt, device=y.device)
            free = c + math.sqrt(1 - eta**2) * sigma_next * (xb - c) / sigma + eta * sigma_next * e
            nl = torch.where(obs, noise_lvl, torch.ones_like(noise_lvl))
            below = c + math.sqrt(1 - eta**2) * sigma_next * (ybar - c) / nl + eta * sigma_next * e
            above = (1 - eta_b) * c + eta_b * ybar + torch.sqrt((sigma_next**2 - eta_b**2 * nl**2).clamp_min(0)) * e
            xb = torch.where(~obs, free, torch.where(sigma_next < noise_lvl, below, above))
            pb.update(xb)
    return _finish(svd.V(xb), n_samples, B, prior, nfe0, steps)


@register("dps", family="sample", needs=("diffusion",), reference="Chung et al. 2023, arXiv:2209.14687")
def dps(
    problem: Problem,
    prior,
    *,
    steps: int = 200,
    n_samples: int = 16,
    zeta: float = 1.0,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Diffusion posterior sampling (Chung et al. 2023): backpropagate the data misfit through the
    denoiser,

        x0_hat = D(x_t, sigma_t),   x' = ancestral_step(x_t, x0_hat),
        x_{t+1} = x' - zeta / ||y - A(x0_hat)|| · ∇_{x_t} ||y - A(x0_hat)||²

    Works with any differentiable operator (nonlinear too). Known to be a poor approximation of the
    posterior when the data are weak (see the GMM benchmark); ``zeta`` = 1 as in the paper, and
    the best of 0.3 / 1 / 3 on validation (docs/results/diffusion-tuning.md).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    n = y.shape[0]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "dps", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = prior.denoise(xg, sigma)
                r = y - problem.operator._forward(x0)
                res2 = (r.abs() ** 2 if r.is_complex() else r**2).reshape(n, -1).sum(1)
                (grad,) = torch.autograd.grad(res2.sum(), xg)
            norm = res2.detach().sqrt().clamp_min(1e-12).reshape(-1, *([1] * (x.dim() - 1)))
            x = _ancestral(x, x0.detach(), sigma, sigma_next, eta, g) - zeta * grad / norm
            pb.update(x)
    return _finish(x.detach(), n_samples, B, prior, nfe0, steps)


def _solve_measurement(A: LinearOperator, r2: float, s2y: float, w: torch.Tensor) -> torch.Tensor:
    """``(r2 A A^T + s2y I)^{-1} w``: through the SVD when there is one, else CG."""
    svd = A.svd()
    if svd is not None:
        s = svd.singular_values(w.real if w.is_complex() else w)
        c = svd.Ut(w)
        in_range = svd.U(c)
        return svd.U(c / (r2 * s**2 + s2y)) + (w - in_range) / s2y
    x, _ = conjugate_gradient(lambda v: r2 * A(A.adjoint(v)) + s2y * v, w, None, tol=1e-8, max_iter=500)
    return x


@register(
    "pigdm", family="sample", needs=("linear", "gaussian_noise", "diffusion"), reference="Song et al. 2023 (ICLR)"
)
def pigdm(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    eta: float = 1.0,
    data_var: float = 0.01,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Pseudoinverse-guided diffusion (ΠGDM, Song, Vahdat, Mardani & Kautz 2023) in the sigma view.

    With ``p(x0 | x_t) ≈ N(x0_hat, r_t² I)``, ``r_t² = data_var sigma_t² / (data_var + sigma_t²)``
    (exact for a prior ``N(mu, data_var I)``), the likelihood score is the VJP

        g = (∂x0_hat/∂x_t)^T A^T (r_t² A A^T + sigma_y² I)^{-1} (y - A x0_hat)

    and the step uses the posterior denoiser ``x0_hat + sigma_t² g`` (DDIM with ``eta``; eta = 1 is
    ancestral). ``(r² A A^T + sigma_y²)^{-1}`` is exact through the SVD view, CG otherwise.
    ``data_var = 0.01`` won on validation images in [0, 1] (docs/results/diffusion-tuning.md; 0.01
    to 0.1 are within 0.4 dB): well below the pixel variance, it trusts the data more. On other
    data set it to the prior's local (per-mode) variance: the GMM benchmark uses 1, its components'
    variance.
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2y = float(problem.sigma) ** 2  # type: ignore[arg-type]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "pigdm", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            r2 = data_var * sigma**2 / (data_var + sigma**2)
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = prior.denoise(xg, sigma)
                v = _solve_measurement(A, r2, s2y, (y - A._forward(x0.detach())))
                (guid,) = torch.autograd.grad(x0, xg, grad_outputs=A._adjoint(v))
            x = _ancestral(x, x0.detach() + sigma**2 * guid, sigma, sigma_next, eta, g)
            pb.update(x)
    return _finish(x.detach(), n_samples, B, prior, nfe0, steps)


@register(
    "diffpir", family="sample", needs=("linear", "gaussian_noise", "diffusion"), reference="Zhu et al. 2023 (CVPR)"
)
def diffpir(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    lam: float = 1.0,
    zeta: float = 0.3,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Denoising diffusion models for plug-and-play image restoration (DiffPIR, Zhu et al. 2023):

        x0_hat = D(x_t, sigma_t)
        x0 = argmin ½||A x - y||² + rho_t/2 ||x - x0_hat||²,   rho_t = lam sigma_y² / sigma_t²   (A.prox_data)
        x_{t+1} = x0 + sigma_{t+1} (sqrt(1 - zeta) eps_hat + sqrt(zeta) eps),   eps_hat = (x_t - x0) / sigma_t

    The paper's deblurring settings are ``lam = 7``, ``zeta = 0.3``; our default ``lam = 1`` won on
    validation (docs/results/diffusion-tuning.md).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2y = float(problem.sigma) ** 2  # type: ignore[arg-type]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "diffpir", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            x0_hat = prior.denoise(x, sigma)
            x0 = A.prox_data(x0_hat, y, lam * s2y / sigma**2, tol=1e-8, max_iter=200)
            if sigma_next == 0:
                x = x0
            else:
                eps_hat = (x - x0) / sigma
                e = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
                x = x0 + sigma_next * (math.sqrt(1 - zeta) * eps_hat + math.sqrt(zeta) * e)
            pb.update(x)
    return _finish(x, n_samples, B, prior, nfe0, steps)


@register("ald", family="sample", needs=("linear", "gaussian_noise", "diffusion"), reference="Jalal et al. 2021")
def ald(
    problem: Problem,
    prior,
    *,
    steps: int = 50,
    inner: int = 5,
    eps: float = 1.0,
    gamma: float = 1.0,
    n_samples: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Score-based annealed Langevin dynamics (Score-ALD, Jalal et al. 2021, NeurIPS):

        x <- x + delta (s(x, sigma) + A^T (y - A x) / (sigma_y² + gamma sigma²)) + sqrt(2 delta) xi

    ``inner`` Langevin steps at each of the ``steps`` noise levels, with ``delta = eps / L_sigma`` and
    ``L_sigma = 1/sigma² + ||A||²/(sigma_y² + gamma sigma²)`` (the paper's ``eps sigma²`` rule, capped by
    the likelihood's curvature); finally ``D(x, sigma_min)``: ``steps · inner + 1`` denoiser calls.
    ``eps = 1`` won on validation (docs/results/diffusion-tuning.md) at the price of coverage
    (0.53 of the 90% intervals against 0.81 at ``eps = 0.5``).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2y = float(problem.sigma) ** 2  # type: ignore[arg-type]
    sigmas = prior.schedule(steps).tolist()[:-1]
    L2 = A.norm() ** 2
    nfe0 = prior.nfe
    with bar(steps, "ald", progress) as pb:
        for sigma in sigmas:
            delta = eps / (1.0 / sigma**2 + L2 / (s2y + gamma * sigma**2))
            for _ in range(inner):
                lik = A._adjoint(y - A._forward(x)) / (s2y + gamma * sigma**2)
                noise = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
                x = x + delta * (prior.score(x, sigma) + lik) + math.sqrt(2 * delta) * noise
            pb.update(x)
    x = prior.denoise(x, sigmas[-1])
    return _finish(x, n_samples, B, prior, nfe0, steps)


@register(
    "ddnm",
    family="sample",
    needs=("pinv", "gaussian_noise", "diffusion"),
    reference="Wang et al. 2023, arXiv:2212.00490",
)
def ddnm(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Denoising diffusion null-space model (DDNM⁺, Wang, Yu & Zhang 2023) in the sigma view:

        x0_hat  = D(x_t, sigma_t)
        x0_c    = x0_hat - Sigma_t A⁺ (A x0_hat - y)
        x_{t+1} = x0_c + Phi_t (sqrt(1 - eta²) (x_t - x0_hat) / sigma_t + eta eps)

    The range-space part of the sample is replaced by the data and the null-space part kept from
    the denoiser; with noisy data only a fraction is replaced and the fresh noise is reduced by the
    noise that ``y`` already carries (the paper's eq. 17-19). When the operator has an SVD
    ``A = U diag(s) V^T`` both are diagonal in its basis: spectral coefficient ``i`` (data
    ``ybar_i = (U^T y)_i / s_i`` with noise ``n_i = sigma_y / s_i``) gets

        lam_i = min(1, sigma_{t+1} / n_i),     Phi_i = sqrt(sigma_{t+1}² - (lam_i n_i)²)

    (``lam_i = 0``, ``Phi_i = sigma_{t+1}`` in the null space), so weak singular values (deblurring)
    take little of their noisy data. Without an SVD, ``Sigma_t = lam_t I`` with
    ``lam_t = min(1, sigma_{t+1} / sigma_y)`` and ``A⁺`` applied to the residual: exact when the
    non-zero singular values are 1 (inpainting, subsampled orthonormal transforms), a noise amplifier
    for ill-conditioned ``A``. With ``sigma_y = 0`` it is plain DDNM (``lam = 1``). Where
    ``lam_i < 1`` the sample's only noise is the measurement's own, shared by all samples: DDNM⁺
    under-covers on noisy, ill-conditioned problems. ``eta = 1`` won on validation
    (docs/results/diffusion-tuning.md).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    sy = float(problem.sigma or 0.0)  # type: ignore[arg-type]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    svd = A.svd() if A.has_svd else None
    if svd is not None:
        s = svd.singular_values(y.real if y.is_complex() else y).to(x.dtype)
        obs = s > 1e-12 * float(s.max())
        s_safe = torch.where(obs, s, torch.ones_like(s))
        ybar = torch.where(obs, svd.Ut(y).to(x.dtype) / s_safe, torch.zeros_like(s))
        n_i = torch.where(obs, sy / s_safe, torch.zeros_like(s))  # data noise per component (0: unobserved)
        noisy = obs & (n_i > 0)
    with bar(steps, "ddnm", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            x0_hat = prior.denoise(x, sigma)
            e = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
            direction = math.sqrt(1 - eta**2) * (x - x0_hat) / sigma + eta * e
            if svd is not None:
                # noiseless observed components take their data fully (lam_i = 1, also at sigma' = 0)
                lam = torch.where(noisy, (sigma_next / n_i.clamp_min(1e-300)).clamp(max=1.0), obs.to(s.dtype))
                c = svd.Vt(x0_hat)
                phi = torch.sqrt((sigma_next**2 - (lam * n_i) ** 2).clamp_min(0))
                x = svd.V(c - lam * (c - ybar) + phi * svd.Vt(direction))
            else:
                lam = 1.0 if sy == 0 else min(1.0, sigma_next / sy)
                x0 = x0_hat - lam * A.pinv(A._forward(x0_hat) - y)
                x = x0 + math.sqrt(max(sigma_next**2 - (lam * sy) ** 2, 0.0)) * direction
            pb.update(x)
    return _finish(x, n_samples, B, prior, nfe0, steps)


@register(
    "mm",
    family="sample",
    needs=("linear", "gaussian_noise", "diffusion"),
    reference="Boys et al. 2024, arXiv:2310.06721",
)
def mm(
    problem: Problem,
    prior,
    *,
    steps: int = 50,
    n_samples: int = 16,
    eta: float = 1.0,
    cg_iter: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Moment matching / Tweedie moment projection (Boys et al. 2024): the likelihood of ``x_t`` is
    approximated with the denoiser's own second moment,

        p(y | x_t) ≈ N(A x0_hat, sigma_y² I + A C_t A^T),     C_t = Cov[x0 | x_t] = sigma_t² ∂x0_hat/∂x_t

    (second-order Tweedie), and the guided denoiser is ``x0_hat + sigma_t² J^T A^T v`` with
    ``v = (sigma_y² I + sigma_t² A J A^T)^{-1} (y - A x0_hat)``, solved by CG (``cg_iter``
    iterations) where each product with ``J = ∂x0_hat/∂x_t`` is a vector-Jacobian product through
    the one denoiser evaluation of the step (``J`` is symmetric for a Tweedie denoiser). Exact for
    any Gaussian prior (also non-isotropic, where ΠGDM's scalar ``r_t`` is not); the derivative
    of ``C_t`` with respect to ``x_t`` is neglected, as in the paper. Then a DDIM step (``eta``).

    Cost: one network forward and ``cg_iter + 1`` backward passes per step (the defaults, 50 steps
    and 5 CG iterations, keep it near 6x the cost of a 50-step forward-only sampler). A learned
    denoiser's Jacobian is only approximately symmetric, so CG on ``sigma_y² I + sigma² A J A^T`` is
    a heuristic there; on the exact Gaussian-mixture denoiser it is exact. A CG solution longer
    than ``||r|| / sigma_y²`` (impossible for a PSD ``J``) is scaled back to that length.
    ``eta = 1`` beat 0.5 on validation (docs/results/diffusion-tuning.md).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    s2y = float(problem.sigma) ** 2  # type: ignore[arg-type]
    sigmas = prior.schedule(steps).tolist()
    nfe0 = prior.nfe
    with bar(steps, "mm", progress) as pb:
        for sigma, sigma_next in pairwise(sigmas):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = prior.denoise(xg, sigma)

                def jvp_t(u: torch.Tensor, x0=x0, xg=xg) -> torch.Tensor:
                    return torch.autograd.grad(x0, xg, grad_outputs=u, retain_graph=True)[0]

                def M(v: torch.Tensor, jvp_t=jvp_t, sigma=sigma) -> torch.Tensor:
                    return s2y * v + sigma**2 * A._forward(jvp_t(A._adjoint(v)))

                r = (y - A._forward(x0.detach())).detach()
                v, _ = conjugate_gradient(M, r, None, tol=1e-6, max_iter=cg_iter)
                # for a PSD J, ||M^{-1}|| <= 1/sigma_y²: a longer v is CG misled by the learned,
                # non-symmetric J (near-zero or negative curvature); pull it back onto that ball
                bound = r.flatten(1).norm(dim=1) / s2y
                scale = (bound / v.flatten(1).norm(dim=1).clamp_min(1e-30)).clamp(max=1.0)
                v = v * scale.reshape(-1, *([1] * (v.dim() - 1)))
                guid = jvp_t(A._adjoint(v))
            x = _ancestral(x, (x0 + sigma**2 * guid).detach(), sigma, sigma_next, eta, g)
            pb.update(x)
    return _finish(x.detach(), n_samples, B, prior, nfe0, steps)


@register("reddiff", family="sample", needs=("diffusion",), reference="Mardani et al. 2023, arXiv:2305.04391")
def reddiff(
    problem: Problem,
    prior,
    *,
    steps: int = 100,
    n_samples: int = 16,
    lam: float = 1.0,
    lr: float = 0.03,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """RED-diff (Mardani, Song, Kautz & Vahdat 2023): variational inference with a point-mass
    ``q(x0) = delta(mu)``, fitted by Adam (``lr``) over a descending noise schedule:

        x_t = mu + sigma_t eps,     eps_hat = (x_t - D(x_t, sigma_t)) / sigma_t
        loss(mu) = ||y - A(mu)||² / (2 sigma_y²) + lam ⟨sg(eps_hat - eps), mu⟩ / sigma_t

    The prior weight ``lam / sigma_t`` makes ``lam · (eps_hat - eps) / sigma_t`` an unbiased estimate
    of ``lam · (-score)`` at small sigma (Bayesian units; the paper writes the same weight as
    ``lam · SNR^{-1/2}`` next to a per-pixel mean data loss). ``mu`` starts from the prior's denoised
    noise, one per sample, so the spread of the ``n_samples`` results shows what the data leave
    undetermined, but it is *not* the posterior spread: RED-diff is a MAP-like estimate (see the GMM
    benchmark). ``lr`` is in image units (pixels in [0, 1]). Works with any differentiable operator.
    ``lam = 1``, ``lr = 0.03`` won on validation (docs/results/diffusion-tuning.md).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    sigmas = prior.schedule(steps).tolist()[:-1]
    nfe0 = prior.nfe
    s2y = float(problem.sigma or 1.0) ** 2  # type: ignore[arg-type]
    mu = prior.denoise(x, sigmas[0]).detach().requires_grad_(True)
    opt = torch.optim.Adam([mu], lr=lr)
    n = y.shape[0]
    trace = []
    with bar(steps, "reddiff", progress) as pb:
        for sigma in sigmas:
            e = torch.randn(mu.shape, generator=g, dtype=mu.dtype, device=mu.device)
            with torch.no_grad():
                xt = mu + sigma * e
                eps_hat = (xt - prior.denoise(xt, sigma)) / sigma
            with torch.enable_grad():
                r = y - problem.operator._forward(mu)
                data = (r.abs() ** 2 if r.is_complex() else r**2).reshape(n, -1).sum(1) / (2 * s2y)
                reg = ((eps_hat - e) * mu).reshape(n, -1).sum(1) * (lam / sigma)
                loss = (data + reg).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            trace.append(float(data.detach().mean()))
            pb.update(mu.detach())
    res = _finish(mu.detach(), n_samples, B, prior, nfe0, steps)
    res.diagnostics.loss_trace = trace
    return res


@register("daps", family="sample", needs=("diffusion",), reference="Zhang et al. 2024, arXiv:2407.01521")
def daps(
    problem: Problem,
    prior,
    *,
    steps: int = 50,
    ode_steps: int = 4,
    langevin_steps: int = 50,
    step_size: float = 0.1,
    n_samples: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Decoupled annealing posterior sampling (DAPS, Zhang et al. 2024). At each noise level
    ``sigma_t`` of the annealing schedule:

        x0_hat = ODE(x_t, sigma_t -> 0)                 (``ode_steps`` Euler steps of the probability flow)
        x0    ~ N(x0; x0_hat, r_t² I) p(y | x0)          (``langevin_steps`` Langevin steps, r_t = sigma_t)
        x_{t+1} = x0 + sigma_{t+1} eps

    The Langevin step is ``delta = step_size / (1/r_t² + L_y)`` with ``L_y`` the curvature of the data
    term (``||A||² / sigma_y²`` for linear ``A``, estimated once by power iteration otherwise), so
    the same default works at every noise level; the operator, never the network, is evaluated in
    the inner loop. ``steps · ode_steps`` denoiser calls. Works with any differentiable operator.
    ``step_size = 0.1`` won on validation (docs/results/diffusion-tuning.md; 0.3 ties).
    """
    prior, g, y, B, x = _start(problem, prior, n_samples, seed)
    op = problem.operator
    s2y = float(problem.sigma or 1.0) ** 2  # type: ignore[arg-type]
    L_y = (op.norm() ** 2 if isinstance(op, LinearOperator) else _nonlinear_norm2(problem, x)) / s2y
    sigmas = prior.schedule(steps).tolist()[:-1]
    nfe0 = prior.nfe
    n = y.shape[0]
    with bar(steps, "daps", progress) as pb:
        for k, sigma in enumerate(sigmas):
            x0_hat = x
            ode = prior.schedule(ode_steps, sigma_max=sigma, sigma_min=min(prior.sigma_min, sigma)).tolist()
            with torch.no_grad():
                for s, s_next in pairwise(ode):
                    d = prior.denoise(x0_hat, s)
                    x0_hat = d if s_next == 0 else d + (s_next / s) * (x0_hat - d)
            r2 = sigma**2
            delta = step_size / (1.0 / r2 + L_y)
            # x0 <- x0 - delta ((x0 - x0_hat) / r² + grad) + sqrt(2 delta) noise, written in place: with
            # a cheap operator the inner loop is memory-bound, and the out-of-place form (five
            # temporaries per step) was 3.5x slower at d = 800 in bench gmm. The Gaussian draws are
            # float32 (3x faster than float64; ample precision for a noise term).
            x0 = x0_hat.clone()
            pull = x0_hat * (delta / r2)
            noise = torch.empty(x0.shape, dtype=torch.float32 if x0.dtype == torch.float64 else x0.dtype,
                                device=x0.device)  # fmt: skip
            for _ in range(langevin_steps):
                gl = _data_grad(op, x0, y, s2y, n)
                torch.randn(x0.shape, generator=g, out=noise)
                x0.mul_(1 - delta / r2).add_(pull).sub_(gl, alpha=delta).add_(noise, alpha=math.sqrt(2 * delta))
            nxt = sigmas[k + 1] if k + 1 < len(sigmas) else 0.0
            x = x0 + nxt * torch.randn(x0.shape, generator=g, dtype=x0.dtype, device=x0.device) if nxt > 0 else x0
            pb.update(x)
    return _finish(x.detach(), n_samples, B, prior, nfe0, steps)


def _data_grad(op, x: torch.Tensor, y: torch.Tensor, s2y: float, n: int) -> torch.Tensor:
    """``∇_x ||y - A(x)||² / (2 sigma_y²)``: ``A^T (A x - y) / sigma_y²`` for linear operators, autograd otherwise."""
    if isinstance(op, LinearOperator):
        r = op._forward(x) - y
        g = op._adjoint(r)
        return (g.real if g.is_complex() and not x.is_complex() else g) / s2y
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        res = y - op._forward(xg)
        nll = (res.abs() ** 2 if res.is_complex() else res**2).reshape(n, -1).sum() / (2 * s2y)
        (gl,) = torch.autograd.grad(nll, xg)
    return gl


def _nonlinear_norm2(problem: Problem, x: torch.Tensor, iters: int = 20) -> float:
    """``||J||²`` of a nonlinear operator at a prior-scale point, by power iteration on ``J^T J``."""
    op = problem.operator
    g = torch.Generator().manual_seed(0)
    x0 = x[:1].detach().clamp(0, 1) if x.dim() == 4 else x[:1].detach()
    v = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    lam = 1.0
    for _ in range(iters):
        v = v / v.norm()
        w = op.vjp(x0, op.jvp(x0, v))
        lam = float(w.flatten().dot(v.flatten()))
        v = w
    return abs(lam)
