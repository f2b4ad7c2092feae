"""The noise-conditioned UNet of the diffusion priors, with EDM preconditioning.

``DiffusionUNet(x, c_noise)`` is the raw network ``F``: GroupNorm/SiLU residual blocks whose
features are scaled and shifted by an embedding of the noise level (FiLM), two downsamplings
(28 → 14 → 7), self-attention at the lowest resolution. ``EDMDenoiser`` turns it into a denoiser
``D(x, sigma)`` on images in [0, 1] with the preconditioning of Karras et al. 2022
(arXiv:2206.00364, Table 1), applied in the network's [-1, 1] space (``x' = 2x - 1``,
``sigma' = 2 sigma``)::

    D'(x', s) = c_skip(s) x' + c_out(s) F(c_in(s) x', ln(s)/4)
    c_skip = sd² / (s² + sd²),  c_out = s sd / sqrt(s² + sd²),  c_in = 1 / sqrt(s² + sd²)

so the network's target has unit variance at every noise level, and ``D -> E[x]`` as ``sigma -> ∞``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DiffusionUNet", "EDMDenoiser", "edm_loss", "edm_loss_net"]


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch // 4), ch)


class FourierEmbedding(nn.Module):
    """Sinusoidal embedding of a scalar (the log noise level) followed by a small MLP."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000.0), dim // 2)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        a = c.reshape(-1, 1).to(self.freqs.dtype) * self.freqs[None]  # the module's dtype (float32 unless moved)
        return self.mlp(torch.cat([a.cos(), a.sin()], dim=1))


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, dropout: float = 0.0):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.n2(h) * (1 + scale) + shift)
        return self.skip(x) + self.c2(self.drop(h))


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = _norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1), heads
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))


class DiffusionUNet(nn.Module):
    """Raw network ``F(x, c_noise[, cond])`` on ``(B, C, H, W)``, any H, W (28 → 14 → 7; 7 → 4 → 7).

    ``cond_channels > 0`` adds input maps that condition it (``models.conditional``); the output
    always has ``channels`` channels.
    """

    def __init__(
        self,
        channels: int = 1,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: int = 2,
        emb: int = 128,
        attention: bool = True,
        dropout: float = 0.0,
        cond_channels: int = 0,
    ):
        super().__init__()
        self.config = {
            "channels": channels, "widths": list(widths), "blocks": blocks, "emb": emb,
            "attention": attention, "dropout": dropout,
        }  # fmt: skip
        if cond_channels:
            self.config["cond_channels"] = cond_channels
        self.cond_channels = cond_channels
        self.embed = FourierEmbedding(emb)
        self.head = nn.Conv2d(channels + cond_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        skip_ch = [widths[0]]
        ch = widths[0]
        for i, w in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResBlock(ch, w, emb, dropout))
                ch = w
                skip_ch.append(ch)
            if i < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skip_ch.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb, dropout), Attention(ch) if attention else nn.Identity(),
                                  ResBlock(ch, ch, emb, dropout)])  # fmt: skip
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(ch + skip_ch.pop(), w, emb, dropout))
                ch = w
            if i > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.tail = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, channels, 3, padding=1))
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``cond``: ``cond_channels`` extra input maps (a measurement, an operator's mask), concatenated."""
        e = self.embed(c_noise)
        h = self.head(x if cond is None else torch.cat([x, cond.to(x.dtype)], dim=1))
        skips = [h]
        for m in self.down:
            h = m(h, e) if isinstance(m, ResBlock) else m(h)
            skips.append(h)
        for m in self.mid:
            h = m(h, e) if isinstance(m, ResBlock) else m(h)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, skips.pop()], dim=1), e)
            else:  # upsample to the size of the skip it meets (odd sizes: 7 -> 4 -> 7)
                h = F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest")
        return self.tail(h)


class EDMDenoiser(nn.Module):
    """``D(x, sigma)`` on [0, 1] images from a raw ``DiffusionUNet`` (see the module docstring).

    ``sigma_data`` is the standard deviation of the training data in the network's [-1, 1] space.
    The noise conditioning ``ln(s)/4`` is clamped at ``sigma_cond_max`` (net units, 20: the top of
    the log-normal training range, where ``P(s > 20) ≈ 2e-4``); ``c_skip``, ``c_out`` and ``c_in`` stay
    exact. Without the clamp the network extrapolates badly beyond what it saw: measured on
    diffusion-shapes, the RMSE of ``D(mu + sigma eps, sigma)`` to the data mean ``mu`` at
    ``sigma = 1000`` ([0, 1] units) was 0.42 unclamped, 0.08 clamped (0.075 at sigma = 10).
    """

    def __init__(self, net: DiffusionUNet, sigma_data: float = 0.5, sigma_cond_max: float = 20.0):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sigma_cond_max = float(sigma_cond_max)
        self.config = {"net": net.config, "sigma_data": self.sigma_data, "sigma_cond_max": self.sigma_cond_max}

    def forward_net_space(self, xs: torch.Tensor, s: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """``D'`` in [-1, 1] space with ``s`` the noise level there (shape ``(B,)``)."""
        sd = self.sigma_data
        s = s.to(xs.dtype).reshape(-1, *([1] * (xs.dim() - 1)))
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        pdt = self.net.head.weight.dtype  # the network's own dtype (float32 unless it was moved)
        inp = (c_in * xs).to(pdt)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            f = self.net(inp, s.reshape(-1).to(pdt).clamp(max=self.sigma_cond_max).log() / 4)
        return c_skip * xs + c_out * f.to(xs.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).flatten().expand(x.shape[0])
        return (self.forward_net_space(2 * x - 1, 2 * sigma) + 1) / 2


def edm_loss(model: EDMDenoiser, x: torch.Tensor, g: torch.Generator, p_mean: float = -1.2, p_std: float = 1.2,
             bf16: bool = True) -> torch.Tensor:  # fmt: skip
    """The EDM training loss on a batch of [0, 1] images: log-normal noise levels, weight
    ``(s² + sd²) / (s sd)²`` so that every level contributes a unit-scale target."""
    return edm_loss_net(model, 2 * x - 1, g, p_mean, p_std, bf16)


def edm_loss_net(model: EDMDenoiser, xs: torch.Tensor, g: torch.Generator, p_mean: float = -1.2,
                 p_std: float = 1.2, bf16: bool = True) -> torch.Tensor:  # fmt: skip
    """``edm_loss`` on data already in the network's space (images in [-1, 1], or normalised latents)."""
    s = (p_mean + p_std * torch.randn(xs.shape[0], generator=g)).exp()
    noisy = xs + s.view(-1, *([1] * (xs.dim() - 1))) * torch.randn(xs.shape, generator=g)
    d = model.forward_net_space(noisy, s, bf16=bf16)
    sd = model.sigma_data
    w = (s**2 + sd**2) / (s * sd) ** 2
    return (w.view(-1, *([1] * (xs.dim() - 1))) * (d - xs) ** 2).mean()
