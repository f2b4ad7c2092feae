"""Denoisers with the one contract ``D(x, sigma) -> x̂`` for images ``(B, C, H, W)``.

``sigma`` is the standard deviation of white Gaussian noise on ``x`` (a float or a ``(B,)``
tensor). Learned and exact denoisers estimate ``E[x0 | x0 + sigma eps = x]``; classical ones
are the usual heuristics. Strength factors are tuned on the validation images by
``scripts/tune_denoisers.py`` (results in ``docs/results/denoiser-tuning.md``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .._checks import InvpriorError
from .regularisers import TV, WaveletL1

__all__ = [
    "BM3DDenoiser",
    "Denoiser",
    "LearnedDenoiser",
    "LowRankDenoiser",
    "NLMDenoiser",
    "TVDenoiser",
    "WaveletDenoiser",
]


def _sigmas(sigma: float | torch.Tensor, b: int) -> list[float]:
    s = torch.as_tensor(sigma, dtype=torch.float64).flatten()
    if s.numel() == 1:
        return [float(s)] * b
    if s.numel() != b:
        raise InvpriorError(f"sigma must be a float or a (batch,) tensor; got {s.numel()} values for batch {b}")
    return s.tolist()


class Denoiser:
    """Base class. Subclasses implement ``_denoise(x, sigma_list)``; ``D(x, sigma)`` checks inputs."""

    def _denoise(self, x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
        raise NotImplementedError

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise InvpriorError(f"{type(self).__name__} denoises images (B, C, H, W), got shape {tuple(x.shape)}")
        sig = _sigmas(sigma, x.shape[0])
        if min(sig) < 0:
            raise InvpriorError("sigma must be >= 0")
        return self._denoise(x, sig)

    __call__ = denoise

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TVDenoiser(Denoiser):
    """``prox`` of ``gamma · TV`` with ``gamma = strength · sigma`` (ROF denoising; ``strength`` tuned
    on the validation images, docs/results/classical-tuning.md)."""

    def __init__(self, strength: float = 1.0, tol: float = 1e-4, max_iter: int = 200):
        self.strength, self.tv = float(strength), TV(1.0, tol=tol, max_iter=max_iter)

    def _denoise(self, x, sigmas):
        if len(set(sigmas)) == 1:
            return self.tv.prox(x, self.strength * sigmas[0]) if sigmas[0] > 0 else x.clone()
        return torch.cat([self._denoise(x[i : i + 1], [s]) for i, s in enumerate(sigmas)])


class WaveletDenoiser(Denoiser):
    """Soft-thresholding of orthogonal wavelet details at ``k · sigma`` (Donoho & Johnstone 1994;
    ``k`` tuned on the validation images)."""

    def __init__(self, k: float = 2.0, wavelet: str = "db4", levels: int | None = None):
        self.k, self.reg = float(k), WaveletL1(1.0, wavelet, levels)

    def _denoise(self, x, sigmas):
        if len(set(sigmas)) == 1:
            return self.reg.prox(x, self.k * sigmas[0])
        return torch.cat([self._denoise(x[i : i + 1], [s]) for i, s in enumerate(sigmas)])


class LowRankDenoiser(Denoiser):
    """Patch-group low-rank denoising: singular-value thresholding of groups of similar patches at
    ``c · sigma · (patch + sqrt(group))``, the largest singular value of a pure-noise group
    (Gu et al. 2014 use weighted thresholds; this is the plain, unweighted version). ``c = 0.8`` was
    the best of {0.5, 0.8, 1.0, 1.3} on the validation image ``moon`` (64², noise 0.1)."""

    def __init__(self, c: float = 0.8, patch: int = 6, group: int = 24):
        from .regularisers import NuclearNorm

        self.c, self.reg = float(c), NuclearNorm(1.0, mode="patches", patch=patch, group=group)

    def _denoise(self, x, sigmas):
        out = torch.empty_like(x)
        for i, s in enumerate(sigmas):
            t = self.c * s * (self.reg.patch + self.reg.group**0.5)
            out[i] = self.reg.prox(x[i : i + 1], t)[0] if s > 0 else x[i]
        return out


class NLMDenoiser(Denoiser):
    """Non-local means (Buades, Coll & Morel 2005) via ``skimage.restoration.denoise_nl_means``,
    with filtering strength ``h = h_factor · sigma``."""

    def __init__(self, h_factor: float = 0.8, patch_size: int = 5, patch_distance: int = 6):
        self.h_factor, self.patch_size, self.patch_distance = float(h_factor), patch_size, patch_distance

    def _denoise(self, x, sigmas):
        from skimage.restoration import denoise_nl_means

        out = torch.empty_like(x)
        for i, s in enumerate(sigmas):
            a = x[i].detach().cpu().double().numpy()
            if s == 0:
                out[i] = x[i]
                continue
            d = denoise_nl_means(
                np.moveaxis(a, 0, -1), h=self.h_factor * s, sigma=s, patch_size=self.patch_size,
                patch_distance=self.patch_distance, fast_mode=True, channel_axis=-1,
            )  # fmt: skip
            out[i] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(d.reshape(a.shape[1], a.shape[2], -1), -1, 0)))
        return out


class BM3DDenoiser(Denoiser):
    """BM3D (Dabov et al. 2007) through the optional ``bm3d`` package (non-commercial licence).

    Install with ``pip install "invprior[bm3d]"``; without it, constructing this raises one clear error.
    """

    def __init__(self):
        try:
            import bm3d  # noqa: F401
        except ImportError as e:
            raise InvpriorError(
                "BM3D needs the optional package 'bm3d' (non-commercial licence): pip install 'invprior[bm3d]'"
            ) from e

    def _denoise(self, x, sigmas):
        import bm3d

        out = torch.empty_like(x)
        for i, s in enumerate(sigmas):
            if s == 0:
                out[i] = x[i]
                continue
            for c in range(x.shape[1]):
                a = x[i, c].detach().cpu().double().numpy()
                out[i, c] = torch.from_numpy(np.asarray(bm3d.bm3d(a, s), dtype=np.float64))
        return out


class LearnedDenoiser(Denoiser):
    """A trained noise-level-conditioned UNet (``invprior.models.DenoiserUNet``) from safetensors.

    ``LearnedDenoiser.pretrained()`` loads the shipped ``denoiser-natural`` weights (trained by
    ``invprior train denoiser`` on train-split natural images); ``LearnedDenoiser.load(path)`` any file.
    Inputs are not clipped; evaluation runs in float32 under ``torch.no_grad`` unless gradients
    are needed (``requires_grad`` inputs keep the graph for RED/DPS-style methods).
    """

    def __init__(self, model: torch.nn.Module, name: str = "custom", info: dict | None = None):
        self.model = model.eval()
        self.name = name
        self.info = info or {}
        for p in self.model.parameters():
            p.requires_grad_(False)

    @classmethod
    def load(cls, path: str | Path) -> LearnedDenoiser:
        """Load ``DenoiserUNet`` weights, verified like every zoo file (``models.checkpoint.load_model``)."""
        from ..models.checkpoint import load_model, load_weights

        _, meta = load_weights(path)
        if meta.get("architecture") != "DenoiserUNet":
            raise InvpriorError(
                f"{path} does not hold DenoiserUNet weights (architecture={meta.get('architecture')!r})"
            )
        model, meta = load_model(path)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return cls(model, Path(path).stem, meta)

    @classmethod
    def pretrained(cls, name: str = "denoiser-natural") -> LearnedDenoiser:
        path = resources.files("invprior.zoo").joinpath(f"{name}.safetensors")
        if not path.is_file():
            raise InvpriorError(f"no shipped weights named {name!r} (train them: invprior train denoiser)")
        return cls.load(str(path))

    def __repr__(self) -> str:
        return f"LearnedDenoiser({self.name!r})"

    def _denoise(self, x, sigmas):
        from .._device import module_placement

        dev, dt = module_placement(self.model)
        s = torch.tensor(sigmas, dtype=dt, device=dev)
        xf = x.to(dev, dt)
        c = self.model.config["channels"]
        if x.shape[1] != c:
            if c == 1:  # a gray model on colour images: per channel
                b, C, H, W = x.shape
                out = self._denoise(x.reshape(b * C, 1, H, W), [v for v in sigmas for _ in range(C)])
                return out.reshape(b, C, H, W)
            raise InvpriorError(f"this denoiser takes {c} channel(s), got {x.shape[1]}")
        if x.requires_grad:
            return self.model(xf, s).to(x.device, x.dtype)
        with torch.no_grad():
            return self.model(xf, s).to(x.device, x.dtype)
