"""Noise models ``y ~ p(y | z = A x)``: sampling, negative log-likelihood, its gradient, chi²."""

from __future__ import annotations

import math

import torch

from .._checks import InvpriorError

__all__ = ["GaussianNoise", "Noise", "PoissonNoise"]


def _bsum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(1)


def _dof(z: torch.Tensor) -> int:
    """Real degrees of freedom of one measurement (complex entries count twice)."""
    return z[0].numel() * (2 if z.is_complex() else 1)


class Noise:
    """Base class: subclasses implement ``sample``, ``nll``, ``grad_nll`` and ``variance``."""

    sigma: float | None = None

    def sample(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``-log p(y | z)`` per batch element, shape ``(batch,)``."""
        raise NotImplementedError

    def grad_nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``d/dz -log p(y | z)`` (for complex ``z``: the gradient w.r.t. real and imaginary parts)."""
        raise NotImplementedError

    def log_likelihood(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(y | z)`` per batch element."""
        return -self.nll(y, z)

    def grad_log_likelihood(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``d/dz log p(y | z)``."""
        return -self.grad_nll(y, z)

    def variance(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def chi2(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``sum |y - z|² / Var[y | z]`` divided by the real degrees of freedom: ≈ 1 at the noise level."""
        r = (y - z).abs() ** 2 if y.is_complex() else (y - z) ** 2
        return _bsum(r / self.variance(z)) / _dof(z)  # complex: sigma² per real component


class GaussianNoise(Noise):
    """Additive white Gaussian noise, ``y = z + sigma · eps``.

    For complex measurements each of the real and imaginary parts gets standard deviation ``sigma``.
    """

    def __init__(self, sigma: float):
        if not sigma >= 0 or not math.isfinite(sigma):
            raise InvpriorError(f"the noise level sigma must be a finite number >= 0, got {sigma}")
        self.sigma = float(sigma)

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma:g})"

    def sample(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.sigma == 0:
            return z.clone()
        if z.is_complex():
            re = torch.randn(z.shape, generator=generator, dtype=z.real.dtype, device=z.device)
            im = torch.randn(z.shape, generator=generator, dtype=z.real.dtype, device=z.device)
            return z + self.sigma * torch.complex(re, im)
        return z + self.sigma * torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)

    def _var(self) -> float:
        if self.sigma == 0:
            raise InvpriorError("the likelihood of noiseless data (sigma = 0) is degenerate; use a small sigma")
        return self.sigma**2

    def nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        var = self._var()
        r = (y - z).abs() ** 2 if y.is_complex() else (y - z) ** 2
        return _bsum(r) / (2 * var) + 0.5 * _dof(z) * math.log(2 * math.pi * var)

    def grad_nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (z - y) / self._var()

    def variance(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full_like(z.real if z.is_complex() else z, self._var())


class PoissonNoise(Noise):
    """Photon-counting noise: ``y = gain · Poisson(z / gain)``, so ``E[y] = z`` and ``Var[y] = gain · z``.

    Smaller ``gain`` means more photons and less noise. ``z`` must be >= 0 (negative values are
    treated as 0 when sampling); the likelihood clamps ``z`` at ``eps`` to stay finite.
    """

    def __init__(self, gain: float, eps: float = 1e-6):
        if not gain > 0:
            raise InvpriorError(f"the Poisson gain must be > 0, got {gain}")
        self.gain = float(gain)
        self.eps = float(eps)

    def __repr__(self) -> str:
        return f"PoissonNoise(gain={self.gain:g})"

    def _real(self, t: torch.Tensor) -> None:
        if t.is_complex():
            raise InvpriorError("Poisson noise needs real, nonnegative measurements")

    def sample(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self._real(z)
        return self.gain * torch.poisson(z.clamp_min(0) / self.gain, generator=generator)

    def nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self._real(y)
        k = y / self.gain
        lam = z.clamp_min(self.eps) / self.gain
        return _bsum(lam - k * torch.log(lam) + torch.lgamma(k + 1))

    def grad_nll(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        k = y / self.gain
        lam = z.clamp_min(self.eps) / self.gain
        return (1 - k / lam) / self.gain

    def variance(self, z: torch.Tensor) -> torch.Tensor:
        return self.gain * z.clamp_min(self.eps)
