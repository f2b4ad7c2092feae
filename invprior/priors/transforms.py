"""Orthogonal sparsifying transforms in torch: multi-level 2-D DWT (periodic) and the 2-D DCT-II.

Both are orthonormal, so ``inverse = adjoint`` and soft-thresholding their coefficients is the
exact prox of the corresponding L1 norm (Daubechies, Defrise & De Mol 2004).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import InvpriorError

__all__ = ["DCT2", "Wavelet2D"]


class Wavelet2D:
    """Orthogonal 2-D wavelet transform with periodic extension, ``levels`` levels.

    ``forward(x)`` returns ``[approx, details_L, ..., details_1]`` where each details entry is a
    ``(B, C, 3, h, w)`` tensor (LH, HL, HH) -- coarsest first. Image sides must be divisible by
    ``2 ** levels``. Filters come from PyWavelets (orthogonal families only: haar, db*, sym*, coif*).
    """

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        import pywt

        w = pywt.Wavelet(wavelet)
        if not w.orthogonal:
            raise InvpriorError(f"wavelet {wavelet!r} is not orthogonal; use haar, db*, sym* or coif*")
        self.name, self.levels = wavelet, int(levels)
        self.lo = torch.tensor(w.dec_lo[::-1], dtype=torch.float64)
        self.hi = torch.tensor(w.dec_hi[::-1], dtype=torch.float64)

    @staticmethod
    def max_levels(h: int, w: int) -> int:
        n = 0
        while h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
            h, w, n = h // 2, w // 2, n + 1
        return n

    def _check(self, h: int, w: int) -> None:
        m = 2**self.levels
        if h % m or w % m:
            raise InvpriorError(
                f"a {self.levels}-level wavelet transform needs sides divisible by {m}; got {h}x{w} "
                f"(use levels <= {self.max_levels(h, w)})"
            )

    def _analysis(self, x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Filter and downsample along ``dim`` (-1 or -2), periodic."""
        L = self.lo.numel()
        xt = x.transpose(dim, -1) if dim != -1 else x
        shape = xt.shape
        flat = xt.reshape(-1, 1, shape[-1])
        idx = torch.arange(shape[-1] + L - 1, device=x.device) % shape[-1]  # periodic extension
        flat = flat[..., idx]
        filt = torch.stack([self.lo, self.hi]).to(flat)[:, None, :]
        out = F.conv1d(flat, filt, stride=2)  # (N, 2, n/2)
        a = out[:, 0].reshape(*shape[:-1], -1)
        d = out[:, 1].reshape(*shape[:-1], -1)
        if dim != -1:
            a, d = a.transpose(dim, -1), d.transpose(dim, -1)
        return a, d

    def _synthesis(self, a: torch.Tensor, d: torch.Tensor, dim: int) -> torch.Tensor:
        """Exact transpose of ``_analysis`` (= its inverse, the filter bank being orthogonal)."""
        at = a.transpose(dim, -1) if dim != -1 else a
        dt = d.transpose(dim, -1) if dim != -1 else d
        shape = at.shape
        n = 2 * shape[-1]
        c = torch.stack([at.reshape(-1, shape[-1]), dt.reshape(-1, shape[-1])], dim=1)
        filt = torch.stack([self.lo, self.hi]).to(c)[:, None, :]
        full = F.conv_transpose1d(c, filt, stride=2, output_padding=1)[:, 0]  # length n + L - 1
        idx = torch.arange(full.shape[-1], device=c.device) % n  # fold the periodic extension back
        out = torch.zeros(full.shape[0], n, dtype=full.dtype, device=full.device).index_add_(-1, idx, full)
        out = out.reshape(*shape[:-1], n)
        return out.transpose(dim, -1) if dim != -1 else out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._check(*x.shape[-2:])
        details = []
        a = x
        for _ in range(self.levels):
            lo_w, hi_w = self._analysis(a, -1)
            ll, lh = self._analysis(lo_w, -2)
            hl, hh = self._analysis(hi_w, -2)
            details.append(torch.stack([lh, hl, hh], dim=2))
            a = ll
        return [a, *details[::-1]]

    def inverse(self, coeffs: list[torch.Tensor]) -> torch.Tensor:
        a = coeffs[0]
        for d in coeffs[1:]:
            lh, hl, hh = d.unbind(dim=2)
            lo_w = self._synthesis(a, lh, -2)
            hi_w = self._synthesis(hl, hh, -2)
            a = self._synthesis(lo_w, hi_w, -1)
        return a


@lru_cache(maxsize=16)
def _dct_matrix(n: int) -> torch.Tensor:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return torch.tensor(m, dtype=torch.float64)


class DCT2:
    """Orthonormal 2-D DCT-II over the last two axes (by matrix products; fine up to ~1024²)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Ch, Cw = _dct_matrix(x.shape[-2]).to(x), _dct_matrix(x.shape[-1]).to(x)
        return Ch @ x @ Cw.T

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        Ch, Cw = _dct_matrix(c.shape[-2]).to(c), _dct_matrix(c.shape[-1]).to(c)
        return Ch.T @ c @ Cw
