"""Latent diffusion priors (Rombach et al. 2022, arXiv:2112.10752): a diffusion model on the
normalised latents ``z = mu(x) / latent_std`` of a KL-regularised autoencoder; images are
``decode(z)``. The samplers ``psld`` and ``resample`` run on it (``ip.solvers``)."""

from __future__ import annotations

import torch
from torch import nn

from .._device import run_on
from .diffusion import Diffusion

__all__ = ["LatentDiffusion"]


class _NetSpace(nn.Module):
    """``D(z, sigma)`` of an ``EDMDenoiser`` trained on unit-std latents: no [0, 1] ↔ [-1, 1] map."""

    def __init__(self, edm: nn.Module):
        super().__init__()
        self.edm = edm

    def forward(self, z: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.edm.forward_net_space(z, sigma)


class LatentDiffusion:
    """``latent``: a ``Diffusion`` on latents of shape ``latent.shape``; ``decode(z)`` and ``encode(x)``
    map between those latents and ``shape`` images.

    ``decode`` must be differentiable (DPS-type samplers backpropagate through it); ``encode`` gives
    the latent of an image (for an autoencoder: the encoder's mean, normalised like the latents the
    diffusion model was trained on). ``from_autoencoder`` builds one from trained networks.
    """

    def __init__(self, latent: Diffusion, decode, encode, shape: tuple[int, ...], name: str = "ldm",
                 info: dict | None = None):  # fmt: skip
        self.latent = latent
        self._decode, self._encode = decode, encode
        self.shape = tuple(int(s) for s in shape)
        self.latent_shape = tuple(latent.shape)
        self.name = name
        self.info = info or {}

    @classmethod
    def from_autoencoder(cls, edm: nn.Module, ae: nn.Module, shape: tuple[int, ...], name: str = "ldm",
                         info: dict | None = None, sigma_min: float = 0.002,
                         sigma_max: float = 40.0) -> LatentDiffusion:  # fmt: skip
        """An ``EDMDenoiser`` trained on ``mu(x) / ae.latent_std`` (``invprior train ldm``) and its
        ``KLAutoencoder``."""
        latent = Diffusion.from_module(_NetSpace(edm), sigma_min, sigma_max, tuple(ae.latent_shape),
                                       name=f"{name} (latent)", info=info)  # fmt: skip

        def decode(z: torch.Tensor) -> torch.Tensor:
            return ae.decode(run_on(ae, z) * ae.latent_std).to(z.device, z.dtype)

        def encode(x: torch.Tensor) -> torch.Tensor:
            return (ae.encode(run_on(ae, x))[0] / ae.latent_std).to(x.device, x.dtype)

        out = cls(latent, decode, encode, shape, name, info)
        out.ae, out.module = ae, edm
        return out

    def __repr__(self) -> str:
        return f"LatentDiffusion({self.name!r}, latent {self.latent_shape} -> images {self.shape})"

    @property
    def nfe(self) -> int:
        """Latent denoiser evaluations so far (samplers report the difference)."""
        return self.latent.nfe

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._decode(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)

    def sample(self, n: int, steps: int = 18, seed: int | torch.Generator | None = 0, solver: str = "heun",
               progress: bool = False) -> torch.Tensor:  # fmt: skip
        """``n`` images: latents by the deterministic sampler of ``Diffusion.sample``, decoded."""
        z = self.latent.sample(n, steps=steps, seed=seed, solver=solver, progress=progress)
        with torch.no_grad():
            return self.decode(z)
