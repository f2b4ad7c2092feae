"""Diffusion priors in the one view every sampler uses: ``x_sigma = x0 + sigma · eps``.

A ``Diffusion`` wraps a denoiser ``D(x, sigma) ≈ E[x0 | x_sigma = x]`` with its noise range; the
score is ``(D(x, sigma) - x) / sigma²`` (Tweedie). Variance-preserving (DDPM) networks
``eps(x_t, t)`` with ``x_t = a_t x0 + sqrt(1 - a_t²) eps`` are wrapped once, here, through

    x = x_t / a_t,   sigma = sqrt(1 - a_t²) / a_t,   D(x, sigma) = x - sigma · eps(a_t x, t)

(Karras et al. 2022, arXiv:2206.00364, Table 1). Samplers iterate over ``schedule(steps)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import InvpriorError

__all__ = ["Diffusion"]


class Diffusion:
    """A diffusion prior: ``denoise(x, sigma)``, ``score(x, sigma)``, ``schedule(steps)``.

    ``denoiser`` takes ``(x, sigma)`` with ``sigma`` a ``(batch,)`` tensor. ``shape`` is the shape of
    one sample (``(d,)`` or ``(C, H, W)``). ``rho`` sets the Karras spacing of the schedule.
    """

    def __init__(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        sigma_min: float,
        sigma_max: float,
        shape: tuple[int, ...],
        rho: float = 7.0,
        name: str = "diffusion",
    ):
        if not 0 < sigma_min < sigma_max:
            raise InvpriorError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self._D = denoiser
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)
        self.shape = tuple(int(s) for s in shape)
        self.name = name
        self.nfe = 0  # denoiser evaluations so far (samplers report the difference)

    def __repr__(self) -> str:
        return f"Diffusion({self.name!r}, sigma in [{self.sigma_min:g}, {self.sigma_max:g}], shape={self.shape})"

    @classmethod
    def from_denoiser(cls, denoiser, sigma_min: float, sigma_max: float, shape=None, name: str | None = None):
        """Wrap any object with ``denoise(x, sigma)`` (e.g. a ``GaussianMixture``: exact denoiser)."""
        shape = shape if shape is not None else getattr(denoiser, "shape", None)
        if shape is None:
            raise InvpriorError("give the sample shape of this denoiser")
        return cls(denoiser.denoise, sigma_min, sigma_max, shape, name=name or type(denoiser).__name__)

    @classmethod
    def from_vp(
        cls,
        eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        alphas_cumprod: torch.Tensor,
        shape: tuple[int, ...],
        name: str = "vp",
    ) -> Diffusion:
        """Wrap a DDPM noise predictor ``eps_model(x_t, t)`` (``t`` integer timesteps) and its
        ``alphas_cumprod`` (``a_t² = alphas_cumprod[t]``) into the sigma view. Between the discrete
        timesteps the noise level is mapped to the nearest ``t`` in log-sigma."""
        ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        sig = ((1 - ac) / ac).sqrt()  # increasing in t
        log_sig = sig.log()

        def D(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = sigma.to(torch.float64).reshape(-1)
            t = (log_sig[None, :] - s.log()[:, None]).abs().argmin(dim=1)
            a = ac[t].sqrt().to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
            sg = sig[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
            return x - sg * eps_model(a * x, t.to(x.device))

        return cls(D, float(sig[0]), float(sig[-1]), shape, name=name)

    def _sig(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).flatten()
        return s.expand(x.shape[0]) if s.numel() == 1 else s

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        self.nfe += 1  # one batched network call
        return self._D(x, self._sig(x, sigma))

    __call__ = denoise

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        s = self._sig(x, sigma).reshape(-1, *([1] * (x.dim() - 1)))
        return (self.denoise(x, sigma) - x) / s**2

    def schedule(self, steps: int, sigma_max: float | None = None, sigma_min: float | None = None) -> torch.Tensor:
        """``steps + 1`` decreasing noise levels: Karras spacing from ``sigma_max`` to ``sigma_min``, then 0."""
        if steps < 1:
            raise InvpriorError(f"steps must be >= 1, got {steps}")
        hi = self.sigma_max if sigma_max is None else sigma_max
        lo = self.sigma_min if sigma_min is None else sigma_min
        r = 1.0 / self.rho
        i = torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)
        s = (hi**r + i * (lo**r - hi**r)) ** self.rho
        return torch.cat([s, torch.zeros(1, dtype=torch.float64)])

    def sample_prior_noise(self, n: int, g: torch.Generator, dtype=torch.float64) -> torch.Tensor:
        return self.sigma_max * torch.randn((n, *self.shape), generator=g, dtype=dtype)
