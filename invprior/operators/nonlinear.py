"""Nonlinear forward models; Jacobians come from autograd (``Operator.jvp`` / ``Operator.vjp``)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .._checks import InvpriorError, normalize_image_shape
from .base import LinearOperator, Operator, complex_dtype

__all__ = ["BeerLambert", "PhaseRetrieval"]


class PhaseRetrieval(Operator):
    """Coded-diffraction phase retrieval: ``y = |F P (d ⊙ x)|`` (or its square).

    ``d`` is a random unit-modulus phase mask (seeded), ``P`` zero-pads the image to
    ``oversampling`` times its size, ``F`` is the orthonormal 2-D FFT. ``measure="amplitude"``
    returns magnitudes, ``"intensity"`` squared magnitudes (Candès, Li & Soltanolkotabi 2015).
    ``linear_part`` is the complex linear operator ``x -> F P (d ⊙ x)``.
    """

    def __init__(
        self, shape, oversampling: float = 2.0, seed: int = 0, measure: Literal["amplitude", "intensity"] = "amplitude"
    ):
        c, h, w = normalize_image_shape(shape)
        if oversampling < 1:
            raise InvpriorError(f"oversampling must be >= 1, got {oversampling}")
        if measure not in ("amplitude", "intensity"):
            raise InvpriorError(f"measure must be 'amplitude' or 'intensity', got {measure!r}")
        self.measure = measure
        self.oversampling = float(oversampling)
        self.pad_shape = (math.ceil(oversampling * h), math.ceil(oversampling * w))
        g = torch.Generator().manual_seed(seed)
        phase = 2 * math.pi * torch.rand(c, h, w, generator=g, dtype=torch.float64)
        self.code = torch.polar(torch.ones_like(phase), phase)
        self.linear_part = _CodedFourier(self)
        super().__init__((c, h, w), (c, *self.pad_shape))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear_part._forward(x).abs()
        return z * z if self.measure == "intensity" else z


class _CodedFourier(LinearOperator):
    """``x -> F P (d ⊙ x)``: the complex linear part of ``PhaseRetrieval``."""

    def __init__(self, pr: PhaseRetrieval):
        c, h, w = pr.code.shape
        super().__init__((c, h, w), (c, *pr.pad_shape), complex_output=True)
        self.pr = pr

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.pr._like("code", self.pr.code, x, complex_=True)
        ph, pw = self.pr.pad_shape
        h, w = x.shape[-2:]
        z = F.pad(x.to(d.dtype) * d, (0, pw - w, 0, ph - h))
        return torch.fft.fft2(z, norm="ortho")

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        d = self.pr._like("code", self.pr.code, y, complex_=True)
        h, w = self.in_shape[-2:]
        z = torch.fft.ifft2(y.to(complex_dtype(y.dtype)), norm="ortho")[..., :h, :w]
        return (z * d.conj()).real


class BeerLambert(Operator):
    """Transmission (Beer-Lambert) measurements ``y = exp(-mu · A x)`` through a linear ``A`` (e.g. CT).

    The pre-log data of X-ray CT: nonlinear in ``x``; the Jacobian is ``-mu · diag(y) A``.
    """

    def __init__(self, A: LinearOperator, mu: float = 1.0):
        if not isinstance(A, LinearOperator) or A.complex_output:
            raise InvpriorError("BeerLambert needs a real linear operator (e.g. CT)")
        super().__init__(A.in_shape, A.out_shape)
        self.A, self.mu = A, float(mu)

    @property
    def name(self) -> str:
        return f"BeerLambert({self.A.name})"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.mu * self.A._forward(x))

    def jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return -self.mu * self(x) * self.A(v)

    def vjp(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return -self.mu * self.A.adjoint(self(x) * w)
