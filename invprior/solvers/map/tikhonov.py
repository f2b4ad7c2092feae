"""Tikhonov-regularised least squares: closed form where the operator allows it, CG otherwise."""

from __future__ import annotations

import torch
from tqdm import tqdm

from ...operators import Gradient, LinearOperator, Problem, conjugate_gradient
from ...priors.regularisers import Tikhonov
from ...result import Diagnostics, Result
from ..registry import register

__all__ = ["tikhonov"]


@register(
    "tikhonov",
    family="map",
    needs=("linear", "gaussian_noise", "tikhonov"),
    reference="Tikhonov 1963; Hansen, Discrete Inverse Problems (SIAM 2010)",
)
def tikhonov(
    problem: Problem,
    prior: Tikhonov | None = None,
    *,
    tol: float = 1e-6,
    max_iter: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Tikhonov MAP estimate: ``argmin_x ½||A x - y||² / sigma_y² + weight/2 ||L (x - c)||²``.

    With ``mu = weight · sigma_y²`` the normal equations are

        (A^T A + mu L^T L) x = A^T y + mu L^T L c,

    solved in closed form when ``L = I`` and ``A`` has an SVD or a closed-form ``prox_data``
    (masks, FFT, SVD: ``x = A.prox_data(c, y, mu)``), by the FFT when ``L`` is the circular
    gradient and ``A`` is Fourier-diagonal (identity, blur), and by conjugate gradients (``tol``,
    ``max_iter``) otherwise; then ``loss_trace`` is CG's relative residual per iteration and
    ``progress`` shows a bar. ``prior=None`` means ``Tikhonov()``. Deterministic: ``seed`` is unused.
    """
    prior = prior or Tikhonov()
    A: LinearOperator = problem.operator  # type: ignore[assignment]
    y = problem.y
    sigma = float(problem.sigma)  # type: ignore[arg-type]
    mu = prior.w * sigma**2
    c = prior.center
    diag = Diagnostics()
    like = y.real if y.is_complex() else y
    z0 = torch.full(problem.x_shape, c, dtype=like.dtype, device=like.device)

    trace: list[float] = []
    if mu == 0:
        x, it = _cg(A, y, 0.0, None, z0, tol, max_iter, trace, progress)
        diag.iterations, diag.extra["path"] = it, "cg (least squares)"
        diag.converged = it < max_iter
    elif prior.kind == "identity" and A.closed_prox_data:
        x = A.prox_data(z0, y, mu)
        diag.extra["path"] = "closed form (prox_data)"
    elif prior.kind == "gradient" and len(A.in_shape) == 3 and A.fourier_symbol(like) is not None:
        K = A.fourier_symbol(like)
        G2 = Gradient(A.in_shape, boundary="circular").fourier_symbol_normal(like)
        den = K.abs() ** 2 + mu * G2
        num = torch.fft.rfft2(y) * K.conj() + mu * G2 * torch.fft.rfft2(z0)
        # where both symbols vanish (e.g. a kernel that kills DC) the mean is undetermined: keep c
        safe = den > 1e-12 * float(den.max())
        spec = torch.where(safe, num / torch.where(safe, den, torch.ones_like(den)), torch.fft.rfft2(z0))
        x = torch.fft.irfft2(spec, s=A.in_shape[-2:])
        diag.extra["path"] = "closed form (FFT)"
    else:
        L = prior.operator(A.in_shape)
        x, it = _cg(A, y, mu, L, z0, tol, max_iter, trace, progress)
        diag.iterations, diag.extra["path"] = it, "conjugate gradients"
        diag.converged = it < max_iter

    with torch.no_grad():
        obj = problem.nll(x) + prior.value(x)
    diag.extra["objective"] = float(obj.sum())
    diag.loss_trace = trace if trace else [float(obj.sum())]
    return Result.from_point(x, diag)


def _cg(A, y, mu, L, z0, tol, max_iter, history, progress):
    b = A.adjoint(y)
    if L is not None and mu > 0:
        b = b + mu * L.normal(z0)

        def M(v):
            return A.normal(v) + mu * L.normal(v)
    else:

        def M(v):
            return A.normal(v)

    with tqdm(total=max_iter, desc="tikhonov CG", disable=not progress, leave=False) as bar:
        return conjugate_gradient(
            M, b, z0, tol=tol, max_iter=max_iter, history=history, callback=lambda _: bar.update()
        )
