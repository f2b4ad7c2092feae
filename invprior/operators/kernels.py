"""Parametric blur kernels, differentiable in their parameters (for blind deblurring, where the
kernel is estimated with the image): ``Blur(gaussian_kernel(cov, 15), shape)``.

Both return a non-negative ``(size, size)`` float64 kernel that sums to 1, centred on the middle
pixel; gradients flow to every tensor parameter that requires grad.
"""

from __future__ import annotations

import math

import torch

from .._checks import InvpriorError

__all__ = [
    "KERNEL_KINDS",
    "blur_batch",
    "check_kernel",
    "gaussian_kernel",
    "image_to_kernel",
    "kernel_error",
    "kernel_to_image",
    "motion_kernel",
    "project_simplex",
    "random_kernels",
]


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
    cd, dd = c.detach(), det.detach()
    if not bool(torch.isfinite(cd).all()) or float(cd[0, 0]) <= 0 or float(dd) <= 0:
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
    if float(L.detach()) < 0 or float(L.detach()) > size - 1:
        raise InvpriorError(
            f"motion length must be in [0, {size - 1}] pixels for a {size}x{size} kernel, got {float(L.detach())}"
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


KERNEL_KINDS = ("gaussian", "motion", "shake")


def _splat(px: torch.Tensor, py: torch.Tensor, width: torch.Tensor, size: int) -> torch.Tensor:
    """``(n, size, size)`` kernels from ``(n, P)`` trajectories: each point spread by a Gaussian of
    std ``width[i]`` pixels, normalised to sum 1."""
    yy, xx = _grid(size)
    d2 = (xx[None, None] - px[..., None, None]) ** 2 + (yy[None, None] - py[..., None, None]) ** 2
    k = torch.exp(-0.5 * d2 / width.reshape(-1, 1, 1, 1) ** 2).sum(1)
    return k / k.sum((1, 2), keepdim=True)


def random_kernels(n: int, size: int = 15, kinds: tuple[str, ...] = KERNEL_KINDS, seed: int = 0) -> torch.Tensor:
    """``n`` random blur kernels ``(n, size, size)`` (float64, non-negative, each sums to 1, centre of
    mass on the centre pixel), an equal share of each of ``kinds``:

    - ``"gaussian"``: anisotropic, std along each axis uniform in [0.5, size/5] px, any orientation;
    - ``"motion"``: a straight segment of length uniform in [2, size - 3] px at any angle;
    - ``"shake"``: camera shake, a random-acceleration trajectory (after Boracchi & Foi 2012) of
      extent uniform in [3, size - 3] px.

    Lines and trajectories are drawn with a Gaussian pen of std uniform in [0.4, 0.8] px. This is the
    training distribution of the zoo's learned kernel prior (``diffusion-kernels``).
    """
    if n < 1:
        raise InvpriorError(f"n must be >= 1, got {n}")
    bad = [k for k in kinds if k not in KERNEL_KINDS]
    if bad or not kinds:
        raise InvpriorError(f"kinds must be a non-empty subset of {KERNEL_KINDS}, got {kinds!r}")
    if size < 7:
        raise InvpriorError(f"random kernels need size >= 7, got {size}")
    _grid(size)  # odd size check
    g = torch.Generator().manual_seed(seed)

    def u(m: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(m, generator=g, dtype=torch.float64)

    which = torch.arange(n) % len(kinds)
    which = which[torch.randperm(n, generator=g)]
    out = torch.empty(n, size, size, dtype=torch.float64)
    P = 64
    for j, kind in enumerate(kinds):
        idx = (which == j).nonzero().flatten()
        m = len(idx)
        if m == 0:
            continue
        if kind == "gaussian":
            s1, s2, th = u(m, 0.5, size / 5), u(m, 0.5, size / 5), u(m, 0, math.pi)
            c, s = th.cos(), th.sin()
            R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (m, 2, 2)
            cov = R @ torch.diag_embed(torch.stack([s1**2, s2**2], -1)) @ R.transpose(1, 2)
            out[idx] = torch.stack([gaussian_kernel(cv, size) for cv in cov])
            continue
        if kind == "motion":
            L, th = u(m, 2, size - 3), u(m, 0, math.pi)
            t = torch.linspace(-0.5, 0.5, P, dtype=torch.float64)[None] * L[:, None]
            px, py = t * th.cos()[:, None], -t * th.sin()[:, None]
        else:  # camera shake: velocity driven by Gaussian accelerations, with a pull back to the start
            acc = torch.randn(m, P, 2, generator=g, dtype=torch.float64)
            v0 = torch.randn(m, 1, 2, generator=g, dtype=torch.float64) * 2
            pos = torch.zeros(m, P, 2, dtype=torch.float64)
            vel = v0[:, 0]
            for i in range(1, P):
                vel = 0.95 * vel + 0.4 * acc[:, i] - 0.02 * pos[:, i - 1]
                pos[:, i] = pos[:, i - 1] + vel
            pos = pos - pos.mean(1, keepdim=True)
            extent = (pos.amax(1) - pos.amin(1)).amax(1).clamp_min(1e-9)
            pos = pos * (u(m, 3, size - 3) / extent)[:, None, None]
            px, py = pos[..., 0], pos[..., 1]
        out[idx] = _splat(px, py, u(m, 0.4, 0.8), size)
    return out


def kernel_to_image(k: torch.Tensor) -> torch.Tensor:
    """A kernel as a [0, 1] image (divided by its maximum), the representation the learned kernel
    prior is trained on; :func:`image_to_kernel` inverts it."""
    return k / k.amax((-2, -1), keepdim=True).clamp_min(1e-12)


def image_to_kernel(z: torch.Tensor) -> torch.Tensor:
    """The kernel an image of the kernel prior stands for: negative values clipped, normalised to sum 1
    (a uniform kernel if nothing is left)."""
    k = z.clamp_min(0)
    s = k.sum((-2, -1), keepdim=True)
    flat = torch.full_like(k, 1.0 / (k.shape[-1] * k.shape[-2]))
    return torch.where(s > 1e-12, k / s.clamp_min(1e-12), flat)


def check_kernel(k: torch.Tensor, image_shape: tuple[int, ...] | None = None, what: str = "kernel") -> torch.Tensor:
    """``k`` as a float64 tensor after checking that it is a blur kernel a blind method can use: 2-D,
    finite, non-negative and summing to 1 (to 1e-4), and no larger than the image (if given)."""
    t = torch.as_tensor(k).detach().to(torch.float64)
    if t.dim() != 2:
        raise InvpriorError(f"the {what} must be a 2-D kernel, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InvpriorError(f"the {what} has NaN or infinite entries")
    if float(t.min()) < -1e-8:
        raise InvpriorError(f"the {what} must be non-negative (its smallest entry is {float(t.min()):.3g})")
    if abs(float(t.sum()) - 1) > 1e-4:
        raise InvpriorError(f"the {what} must sum to 1 (it sums to {float(t.sum()):.6g}); divide it by its sum")
    if image_shape is not None and (t.shape[0] > image_shape[-2] or t.shape[1] > image_shape[-1]):
        raise InvpriorError(f"the {tuple(t.shape)} {what} is larger than the {image_shape[-2]}x{image_shape[-1]} image")
    return t


def project_simplex(k: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each kernel (last two axes) onto {k >= 0, sum k = 1} (Duchi et al. 2008)."""
    shape = k.shape
    v = k.reshape(-1, shape[-2] * shape[-1])
    u = v.sort(1, descending=True).values
    css = u.cumsum(1) - 1
    idx = torch.arange(1, v.shape[1] + 1, dtype=v.dtype, device=v.device)
    rho = ((u - css / idx) > 0).sum(1, keepdim=True).clamp_min(1)
    theta = css.gather(1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp_min(0).reshape(shape)


def _centre_pad(k: torch.Tensor, size: int) -> torch.Tensor:
    p = (size - k.shape[-1]) // 2
    return torch.nn.functional.pad(k, (p, p, p, p))


def kernel_error(estimate: torch.Tensor, truth: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Relative error ``||k_est - k||₂ / ||k||₂`` per kernel (``(..., s, s)``, odd sides, may differ;
    the smaller is zero-padded about its centre), minimised over integer shifts of up to ``max_shift``
    pixels: a blind estimate is defined only up to a shift (the image moves the opposite way)."""
    e, t = torch.as_tensor(estimate, dtype=torch.float64), torch.as_tensor(truth, dtype=torch.float64)
    size = max(e.shape[-1], e.shape[-2], t.shape[-1], t.shape[-2]) + 2 * max_shift
    e, t = _centre_pad(e, size), _centre_pad(t, size)
    best = None
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            d = (torch.roll(e, (dy, dx), (-2, -1)) - t).flatten(-2).norm(dim=-1)
            best = d if best is None else torch.minimum(best, d)
    assert best is not None
    return best / t.flatten(-2).norm(dim=-1)
