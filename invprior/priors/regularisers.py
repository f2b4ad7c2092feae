"""Regularisers ``R(x)`` with ``value``, ``grad`` and ``prox`` (the MAP half of the priors)."""

from __future__ import annotations

from typing import Literal

import torch

from .._checks import InvpriorError
from ..operators import Gradient, Identity, LinearOperator, conjugate_gradient

__all__ = ["Tikhonov"]


class Tikhonov:
    """``R(x) = weight/2 · ||L (x - center)||²`` with ``L = I`` (``kind="identity"``) or the circular
    finite-difference gradient (``kind="gradient"``, a smoothness prior). Tikhonov (1963).

    In MAP problems the data term is ``½||A x - y||² / sigma_y²``, so ``weight`` is a prior
    precision: ``kind="identity"`` is the Gaussian prior ``N(center, I / weight)``.
    """

    def __init__(self, weight: float = 1.0, kind: Literal["identity", "gradient"] = "gradient", center: float = 0.0):
        if kind not in ("identity", "gradient"):
            raise InvpriorError(f"Tikhonov kind must be 'identity' or 'gradient', got {kind!r}")
        if not weight >= 0:
            raise InvpriorError(f"the Tikhonov weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.kind = kind
        self.center = float(center)

    def __repr__(self) -> str:
        return f"Tikhonov(weight={self.weight:g}, kind={self.kind!r}, center={self.center:g})"

    def operator(self, shape: tuple[int, ...]) -> LinearOperator:
        """The matrix ``L`` for signals of shape ``shape``."""
        return Identity(shape) if self.kind == "identity" else Gradient(shape, boundary="circular")

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``R(x)`` per batch element."""
        r = self.operator(tuple(x.shape[1:]))(x - self.center)
        return 0.5 * self.weight * (r * r).flatten(1).sum(1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        L = self.operator(tuple(x.shape[1:]))
        return self.weight * L.normal(x - self.center)

    def prox(self, v: torch.Tensor, tau: float) -> torch.Tensor:
        """``argmin_x ½||x - v||² + tau R(x)`` (FFT for images, CG for vectors)."""
        t = tau * self.weight
        if self.kind == "identity":
            return (v + t * self.center) / (1 + t)
        L = Gradient(tuple(v.shape[1:]), boundary="circular")
        if v.dim() == 4:
            G2 = L.fourier_symbol_normal(v)
            return torch.fft.irfft2(torch.fft.rfft2(v) / (1 + t * G2), s=v.shape[-2:])
        x, _ = conjugate_gradient(lambda z: z + t * L.normal(z), v, v, tol=1e-10, max_iter=1000)
        return x
