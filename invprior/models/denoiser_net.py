"""A small noise-level-conditioned denoising UNet (DRUNet-style, Zhang et al. 2021, arXiv:2008.13751).

Input: the noisy image and a constant noise-level map ``sigma`` (one extra channel, as in DRUNet
and FFDNet); output: the clean-image estimate ``x + net(x, sigma)`` (residual learning). Trained
with the MSE, so it approximates the MMSE denoiser ``E[x0 | x0 + sigma eps = x]`` of the design.
Sizes divisible by ``2 ** (levels - 1)`` are processed directly; others are reflect-padded.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DenoiserUNet"]


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(x)))


class DenoiserUNet(nn.Module):
    """``(B, C, H, W), sigma (B,) -> (B, C, H, W)``. Bias-free convolutions as in DRUNet."""

    def __init__(self, channels: int = 1, widths: tuple[int, ...] = (32, 64, 96), blocks: int = 2):
        super().__init__()
        self.config = {"channels": channels, "widths": list(widths), "blocks": blocks}
        self.head = nn.Conv2d(channels + 1, widths[0], 3, padding=1, bias=False)
        self.down_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, w in enumerate(widths[:-1]):
            self.down_blocks.append(nn.Sequential(*[_ResBlock(w) for _ in range(blocks)]))
            self.downs.append(nn.Conv2d(w, widths[i + 1], 2, stride=2, bias=False))
        self.body = nn.Sequential(*[_ResBlock(widths[-1]) for _ in range(blocks)])
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in range(len(widths) - 1, 0, -1):
            self.ups.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2, bias=False))
            self.up_blocks.append(nn.Sequential(*[_ResBlock(widths[i - 1]) for _ in range(blocks)]))
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1, bias=False)
        self.multiple = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
        s = sigma.reshape(b, 1, 1, 1).to(xp.dtype).expand(b, 1, *xp.shape[-2:])
        z = self.head(torch.cat([xp, s], dim=1))
        skips = []
        for blk, down in zip(self.down_blocks, self.downs, strict=True):
            z = blk(z)
            skips.append(z)
            z = down(z)
        z = self.body(z)
        for up, blk in zip(self.ups, self.up_blocks, strict=True):
            z = blk(up(z) + skips.pop())
        out = xp + self.tail(z)
        return out[..., :h, :w]
