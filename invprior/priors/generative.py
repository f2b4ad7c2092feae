"""Latent generative priors: ``LatentGenerator`` (GAN or VAE decoder) and ``Flow`` (exact density).

Both wrap a trained network in evaluation mode with frozen parameters: gradients flow to the
inputs (latent MAP, flow MAP), never into the weights. Images at the boundary are in [0, 1].
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from .._checks import InvpriorError, make_generator
from .._device import module_placement

__all__ = ["Flow", "LatentGenerator"]


def _freeze(m: nn.Module) -> nn.Module:
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


class LatentGenerator:
    """``G(z)``: latents ``(B, latent_dim)`` with prior ``N(0, I)`` → images ``(B, *shape)`` in [0, 1].

    ``kind`` is ``"gan"`` or ``"vae"``. A VAE also has ``encode(x)`` (the posterior mean of
    ``q(z|x)``) and ``decoder_std`` (its learned per-pixel likelihood std, ``(1, *shape)``).
    """

    def __init__(
        self,
        generator: nn.Module | callable,
        latent_dim: int,
        shape: tuple[int, ...],
        kind: str = "gan",
        encoder=None,
        decoder_std: torch.Tensor | None = None,
        name: str = "generator",
        info: dict | None = None,
        compute_dtype: torch.dtype | None = torch.float32,
    ):
        self._G = _freeze(generator) if isinstance(generator, nn.Module) else generator
        # the network whose weights say where it runs (a VAE's decode is a method of the VAE module)
        self._module = generator if isinstance(generator, nn.Module) else getattr(generator, "__self__", None)
        self.compute_dtype = compute_dtype  # a plain callable's dtype (None: call it in the latent's dtype)
        self.latent_dim = int(latent_dim)
        self.shape = tuple(int(s) for s in shape)
        self.kind = kind
        self._encoder = encoder
        self.decoder_std = decoder_std
        self.name = name
        self.info = info or {}

    def __repr__(self) -> str:
        return f"LatentGenerator({self.name!r}, kind={self.kind}, latent_dim={self.latent_dim}, shape={self.shape})"

    @property
    def has_encoder(self) -> bool:
        return self._encoder is not None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise InvpriorError(f"{self.name} takes latents of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        out = self._G(self._c(z))
        return out.to(z.device, z.dtype).reshape(z.shape[0], *self.shape)

    generate = __call__

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self._encoder is None:
            raise InvpriorError(f"{self.name} ({self.kind}) has no encoder; only VAE priors do")
        return self._encoder(self._c(x)).to(x.device, x.dtype)

    def _c(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on the network's device and in its dtype (see ``invprior._device``)."""
        dev, dt = module_placement(self._module, self.compute_dtype)
        return t.to(device=dev or t.device, dtype=(dt or t.dtype) if self.compute_dtype is not None else t.dtype)

    def sample_latent(self, n: int, seed: int | torch.Generator | None = 0, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=make_generator(seed), dtype=dtype)

    @torch.no_grad()
    def sample(self, n: int, seed: int | torch.Generator | None = 0, batch: int = 500) -> torch.Tensor:
        z = self.sample_latent(n, seed)
        return torch.cat([self(z[i : i + batch]) for i in range(0, n, batch)])


class Flow:
    """An invertible map ``z = f(x)`` with standard-normal ``z`` and exact ``log_prob(x)`` (nats per
    sample, density on [0, 1]^d). ``forward(x) -> (z, log|det df/dx|)``, ``inverse(z) -> x``."""

    def __init__(
        self,
        model: nn.Module,
        shape: tuple[int, ...],
        name: str = "flow",
        info: dict | None = None,
        compute_dtype: torch.dtype | None = torch.float32,
    ):
        self.model = _freeze(model)
        self.compute_dtype = compute_dtype
        self.shape = tuple(int(s) for s in shape)
        self.dim = int(math.prod(self.shape))
        self.latent_dim = self.dim
        self.name = name
        self.info = info or {}

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, shape={self.shape})"

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.shape:
            raise InvpriorError(f"{self.name} takes images of shape (batch, {', '.join(map(str, self.shape))}), "
                                f"got {tuple(x.shape)}")  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x)
        z, ld = self.model(self._c(x))
        return z.to(x.device, x.dtype), ld.to(x.device, x.dtype)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.inverse(self._c(z)).to(z.device, z.dtype).reshape(z.shape[0], *self.shape)

    def inverse_log_prob(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log p(x))`` for ``x = f⁻¹(z)``: from the inverse pass's own log-determinant when the
        model provides it (``model.inverse(z, logdet=True)``: no second pass, and finite where
        ``forward`` would take the log of a saturated pixel), else through ``forward(x)``."""
        log_n = -0.5 * (z**2).flatten(1).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        if "logdet" not in inspect.signature(self.model.inverse).parameters:
            x = self.inverse(z)
            return x, log_n + self.forward(x)[1]
        x, ld = self.model.inverse(self._c(z), logdet=True)
        return x.to(z.device, z.dtype).reshape(z.shape[0], *self.shape), log_n - ld.to(z.device, z.dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.model.log_prob(self._c(x)).to(x.device, x.dtype)

    def _c(self, t: torch.Tensor) -> torch.Tensor:
        dev, dt = module_placement(self.model, self.compute_dtype)
        return t.to(device=dev or t.device, dtype=(dt or t.dtype) if self.compute_dtype is not None else t.dtype)

    @torch.no_grad()
    def sample(self, n: int, seed: int | torch.Generator | None = 0, temperature: float = 1.0) -> torch.Tensor:
        z = temperature * torch.randn(n, self.dim, generator=make_generator(seed))
        return self.inverse(z).clamp(0, 1)
