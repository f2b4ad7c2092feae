"""Parallel-beam computed tomography in pure torch: Radon transform, exact transpose, FBP."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_shape, normalize_image_shape
from .base import LinearOperator, real_dtype

__all__ = ["CT"]

_CHUNK_ELEMENTS = 1 << 23  # samples per grid_sample call: bounds memory at any size


class CT(LinearOperator):
    """Parallel-beam Radon transform: ``(C, H, W) -> (C, n_angles, n_detectors)``.

    Angles ``theta_j = j pi / n_angles``; detector bins and ray samples are one pixel apart, centred
    on the image centre; ``n_detectors`` defaults to ``ceil(sqrt(H² + W²))`` so every pixel is seen
    at every angle. Line integrals are sums of bilinear interpolations along each ray:

        (A x)[j, k] = sum_l x(t_k cos th_j - s_l sin th_j, t_k sin th_j + s_l cos th_j)

    The adjoint is the exact transpose of that interpolation (the backward of ``grid_sample``), so
    ``<A x, y> = <x, A^T y>`` holds to rounding. ``pinv`` is filtered back-projection (Ram-Lak
    ramp filter): an approximate inverse (``pinv_exact = False``), not a Moore-Penrose one.
    """

    pinv_exact = False

    def __init__(self, shape, n_angles: int = 180, n_detectors: int | None = None):
        c, h, w = normalize_image_shape(shape)
        self.n_angles = int(n_angles)
        self.n_det = int(n_detectors) if n_detectors is not None else math.ceil(math.hypot(h, w))
        self.n_samples = self.n_det
        self.theta = torch.arange(self.n_angles, dtype=torch.float64) * math.pi / self.n_angles
        self._filter: torch.Tensor | None = None
        super().__init__((c, h, w), (c, self.n_angles, self.n_det))

    def _grid(self, j0: int, j1: int, like: torch.Tensor) -> torch.Tensor:
        """Normalised sampling points for angles ``j0:j1``: ``(1, J * n_det, n_samples, 2)``."""
        dt = real_dtype(like.dtype)
        _, h, w = self.in_shape
        th = self.theta[j0:j1].to(dtype=dt, device=like.device)
        t = torch.arange(self.n_det, dtype=dt, device=like.device) - (self.n_det - 1) / 2
        s = torch.arange(self.n_samples, dtype=dt, device=like.device) - (self.n_samples - 1) / 2
        cos, sin = th.cos()[:, None, None], th.sin()[:, None, None]
        px = t[None, :, None] * cos - s[None, None, :] * sin  # (J, n_det, n_s), pixel units
        py = t[None, :, None] * sin + s[None, None, :] * cos
        gx = px / max((w - 1) / 2, 0.5)
        gy = py / max((h - 1) / 2, 0.5)
        return torch.stack([gx, gy], dim=-1).reshape(1, -1, self.n_samples, 2)

    def _chunks(self, batch: int):
        per_angle = batch * self.in_shape[0] * self.n_det * self.n_samples
        step = max(1, _CHUNK_ELEMENTS // max(per_angle, 1))
        for j0 in range(0, self.n_angles, step):
            yield j0, min(j0 + step, self.n_angles)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        out = []
        for j0, j1 in self._chunks(b):
            grid = self._grid(j0, j1, x).expand(b, -1, -1, -1)
            v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out.append(v.sum(-1).reshape(b, c, j1 - j0, self.n_det))
        return torch.cat(out, dim=2)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        y = y.real if y.is_complex() else y
        b, c = y.shape[:2]
        x_zero = torch.zeros((b, *self.in_shape), dtype=y.dtype, device=y.device)
        acc = torch.zeros_like(x_zero)
        for j0, j1 in self._chunks(b):
            grid = self._grid(j0, j1, y).expand(b, -1, -1, -1)
            g_out = y[:, :, j0:j1].reshape(b, c, -1, 1).expand(-1, -1, -1, self.n_samples)
            g_in, _ = torch.ops.aten.grid_sampler_2d_backward(
                g_out.contiguous(), x_zero, grid.contiguous(), 0, 0, True, [True, False]
            )
            acc = acc + g_in
        return acc

    # ----- filtered back-projection -----------------------------------------------------------
    def _ramp(self, like: torch.Tensor) -> torch.Tensor:
        if self._filter is None:
            size = max(64, int(2 ** math.ceil(math.log2(2 * self.n_det))))
            n = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
            f = np.zeros(size)
            f[0] = 0.25
            f[1::2] = -1.0 / (np.pi * n) ** 2
            self._filter = torch.as_tensor(2 * np.real(np.fft.fft(f)), dtype=torch.float64)
        return self._like("ramp", self._filter, like)

    def fbp(self, y: torch.Tensor) -> torch.Tensor:
        """Filtered back-projection with the Ram-Lak filter (Kak & Slaney 1988, ch. 3)."""
        check_shape(y, self.out_shape, "the sinogram given to CT.fbp")
        ramp = self._ramp(y)
        size = ramp.shape[0]
        spec = torch.fft.fft(F.pad(y, (0, size - self.n_det)), dim=-1) * ramp
        filtered = torch.fft.ifft(spec, dim=-1).real[..., : self.n_det]
        return self._adjoint(filtered) * (math.pi / (2 * self.n_angles))

    @property
    def has_pinv(self) -> bool:
        return True

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        """Filtered back-projection (approximate inverse; see ``fbp``)."""
        return self.fbp(y)
