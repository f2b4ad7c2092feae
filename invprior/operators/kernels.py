"""Parametric blur kernels, differentiable in their parameters (for blind deblurring, where the
kernel is estimated with the image): ``Blur(gaussian_kernel(cov, 15), shape)``.

Both return a non-negative ``(size, size)`` float64 kernel that sums to 1, centred on the middle
pixel; gradients flow to every tensor parameter that requires grad.
"""

from __future__ import annotations

import math

import torch

from .._checks import InvpriorError

__all__ = ["blur_batch", "gaussian_kernel", "motion_kernel"]


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise InvpriorError(f"a kernel size must be an odd whole number >= 1, got {size!r}")
    t = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return yy, xx


def gaussian_kernel(cov: torch.Tensor | list, size: int) -> torch.Tensor:
    """Anisotropic Gaussian ``exp(-p^T cov^-1 p / 2)`` on the ``size × size`` pixel grid (``p`` =
    (row, column) offset from the centre), normalised to sum 1. ``cov``: a 2×2 symmetric positive
    definite matrix in pixels² (``torch.eye(2) * s**2`` is the isotropic kernel of std ``s``)."""
    c = cov if isinstance(cov, torch.Tensor) else torch.as_tensor(cov, dtype=torch.float64)
    c = c.to(torch.float64)
    if c.shape != (2, 2):
        raise InvpriorError(f"cov must be a 2x2 matrix, got shape {tuple(c.shape)}")
    det = c[0, 0] * c[1, 1] - c[0, 1] * c[1, 0]
    if not bool(torch.isfinite(c).all()) or float(c[0, 0]) <= 0 or float(det) <= 0:
        raise InvpriorError(f"cov must be symmetric positive definite, got {c.detach().tolist()}")
    yy, xx = _grid(size)
    inv = torch.stack([torch.stack([c[1, 1], -c[0, 1]]), torch.stack([-c[1, 0], c[0, 0]])]) / det
    q = inv[0, 0] * yy**2 + (inv[0, 1] + inv[1, 0]) * yy * xx + inv[1, 1] * xx**2
    k = torch.exp(-0.5 * q)
    return k / k.sum()


def motion_kernel(length: torch.Tensor | float, angle: torch.Tensor | float, size: int,
                  width: float = 0.5, points: int = 64) -> torch.Tensor:  # fmt: skip
    """Linear motion over ``length`` pixels at ``angle`` degrees (counter-clockwise from the x axis):
    the segment is sampled at ``points`` positions, each spread by a Gaussian of std ``width`` pixels
    (so the kernel is smooth in ``length`` and ``angle``), normalised to sum 1."""
    L = length if isinstance(length, torch.Tensor) else torch.tensor(float(length), dtype=torch.float64)
    a = angle if isinstance(angle, torch.Tensor) else torch.tensor(float(angle), dtype=torch.float64)
    L, a = L.to(torch.float64), a.to(torch.float64)
    if float(L) < 0 or float(L) > size - 1:
        raise InvpriorError(
            f"motion length must be in [0, {size - 1}] pixels for a {size}x{size} kernel, got {float(L)}"
        )
    if width <= 0:
        raise InvpriorError(f"width must be > 0, got {width}")
    yy, xx = _grid(size)
    s = torch.linspace(-0.5, 0.5, points, dtype=torch.float64) * L
    rad = a * math.pi / 180
    px, py = s * torch.cos(rad), -s * torch.sin(rad)  # rows grow downwards
    d2 = (xx[None] - px[:, None, None]) ** 2 + (yy[None] - py[:, None, None]) ** 2
    k = torch.exp(-0.5 * d2 / width**2).sum(0)
    return k / k.sum()


def blur_batch(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Circular convolution of each image ``x[i]`` (``(n, C, H, W)``) with its own kernel ``k[i]``
    (``(n, kh, kw)``, centre pixel at the origin, as ``Blur``); differentiable in both."""
    h, w = x.shape[-2:]
    kh, kw = k.shape[-2:]
    if kh > h or kw > w:
        raise InvpriorError(f"the {kh}x{kw} kernel is larger than the {h}x{w} image")
    pad = torch.nn.functional.pad(k, (0, w - kw, 0, h - kh))  # the kernel in the top-left corner
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(1, 2))
    K = torch.fft.rfft2(pad)[:, None]
    return torch.fft.irfft2(torch.fft.rfft2(x.to(k.dtype)) * K, s=(h, w)).to(x.dtype)
