"""Identity, inpainting masks, dense matrices and the finite-difference gradient."""

from __future__ import annotations

import math
from typing import Literal

import torch

from .._checks import InvpriorError, check_shape, normalize_image_shape
from .base import SVD, LinearOperator, mask_after_shape, real_dtype

__all__ = ["Gradient", "Identity", "Inpainting", "Matrix"]


class Identity(LinearOperator):
    """``A x = x`` (denoising). Works for any shape: vectors ``(d,)`` or images ``(C, H, W)``."""

    def __init__(self, shape: tuple[int, ...] | torch.Size):
        shape = tuple(int(s) for s in shape)
        if len(shape) == 4:
            shape = shape[1:]
        super().__init__(shape, shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

    def svd(self) -> SVD:
        shape = self.in_shape
        return SVD(
            Vt=lambda x: x.reshape(x.shape[0], -1),
            V=lambda c: c.reshape(c.shape[0], *shape),
            Ut=lambda y: y.reshape(y.shape[0], -1),
            U=lambda c: c.reshape(c.shape[0], *shape),
            s=torch.ones(self.n, dtype=torch.float64),
        )

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        check_shape(y, self.out_shape, "the measurement given to Identity.pinv")
        return y.clone()

    def prox_data(self, z, y, rho, **kwargs) -> torch.Tensor:
        check_shape(z, self.in_shape, "z given to Identity.prox_data")
        check_shape(y, self.out_shape, "y given to Identity.prox_data")
        r = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        r = r.reshape(-1, *([1] * (z.dim() - 1))) if r.dim() else r
        return (y + r * z) / (1 + r)

    def fourier_symbol(self, like: torch.Tensor) -> torch.Tensor | None:
        if len(self.in_shape) < 2:
            return None
        H, W = self.in_shape[-2:]
        return torch.ones(H, W // 2 + 1, dtype=real_dtype(like.dtype), device=like.device)


class Inpainting(LinearOperator):
    """Keep the pixels where ``mask`` is True: ``A x = x[mask]``, a vector of the ``m`` observed values.

    ``Inpainting(shape, mask)``, or ``Inpainting(mask=m)`` when the mask has the image's own shape.
    ``mask`` has the image shape ``(C, H, W)``, or ``(H, W)`` applied to every channel. The
    measurement is compact (only observed pixels carry noise); ``A.T(y)`` is the zero-filled image.
    Factories: ``Inpainting.random(shape, missing=0.7)`` (or ``keep=0.3``), ``Inpainting.box(shape, size)``.
    """

    def __init__(self, shape: tuple[int, ...] | torch.Size | None = None, mask: torch.Tensor | None = None):
        shape, mask = mask_after_shape("Inpainting", shape, mask)
        mask = torch.as_tensor(mask).to(torch.bool).cpu()
        if shape is None:
            shape = mask.shape
        c, h, w = normalize_image_shape(shape)
        if mask.dim() == 2:
            mask = mask.expand(c, h, w)
        if tuple(mask.shape) != (c, h, w):
            raise InvpriorError(f"the inpainting mask has shape {tuple(mask.shape)}, expected {(c, h, w)} or {(h, w)}")
        self.mask = mask.contiguous()
        self.index = torch.nonzero(self.mask.flatten(), as_tuple=True)[0]
        m = int(self.index.numel())
        if m == 0:
            raise InvpriorError("the inpainting mask observes no pixel")
        super().__init__((c, h, w), (m,))

    @classmethod
    def random(
        cls, shape, missing: float | None = None, seed: int = 0, *, keep: float | None = None, fraction=None
    ) -> Inpainting:
        """Random pixels missing, the same in every channel: give ``missing``, the share of pixels
        removed (``missing=0.7`` keeps 30%), or ``keep``, the share observed (deepinv's mask ratio).
        ``fraction`` is the old name of ``missing``."""
        if fraction is not None:
            if missing is not None:
                raise InvpriorError("give missing= only (fraction= is its old name)")
            missing = fraction
        if (missing is None) == (keep is None):
            raise InvpriorError("give exactly one of missing= (share of pixels removed) or keep= (share observed)")
        if keep is not None:
            if not 0.0 < keep <= 1.0:
                raise InvpriorError(f"keep (share of observed pixels) must be in (0, 1], got {keep}")
            missing = 1.0 - keep
        if not 0.0 <= missing < 1.0:
            raise InvpriorError(f"missing (share of missing pixels) must be in [0, 1), got {missing}")
        c, h, w = normalize_image_shape(shape)
        g = torch.Generator().manual_seed(seed)
        observed = torch.rand(h, w, generator=g, dtype=torch.float64) >= missing
        return cls((c, h, w), observed)

    @classmethod
    def box(cls, shape, size: int | float, center: tuple[int, int] | None = None) -> Inpainting:
        """A missing square of side ``size`` (pixels, or a fraction of the image side if < 1)."""
        c, h, w = normalize_image_shape(shape)
        side_h = round(size * h) if isinstance(size, float) and size < 1 else int(size)
        side_w = round(size * w) if isinstance(size, float) and size < 1 else int(size)
        if not (0 < side_h < h and 0 < side_w < w):
            raise InvpriorError(f"box size {size} does not fit an image of {h}x{w}")
        ci, cj = center if center is not None else (h // 2, w // 2)
        keep = torch.ones(h, w, dtype=torch.bool)
        i0, j0 = max(ci - side_h // 2, 0), max(cj - side_w // 2, 0)
        keep[i0 : i0 + side_h, j0 : j0 + side_w] = False
        return cls((c, h, w), keep)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)[:, self.index.to(x.device)]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        idx = self.index.to(y.device)
        out = torch.zeros((y.shape[0], self.n), dtype=real_dtype(y.dtype), device=y.device)
        out[:, idx] = y.real if y.is_complex() else y
        return out.reshape(y.shape[0], *self.in_shape)

    def svd(self) -> SVD:
        n, idx, shape = self.n, self.index, self.in_shape

        def Ut(y: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((y.shape[0], n), dtype=y.dtype, device=y.device)
            out[:, idx.to(y.device)] = y
            return out

        return SVD(
            Vt=lambda x: x.reshape(x.shape[0], -1),
            V=lambda c: c.reshape(c.shape[0], *shape),
            Ut=Ut,
            U=lambda c: c[:, idx.to(c.device)],
            s=self.mask.flatten().to(torch.float64),
        )

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        check_shape(y, self.out_shape, "the measurement given to Inpainting.pinv")
        return self._adjoint(y)

    def prox_data(self, z, y, rho, **kwargs) -> torch.Tensor:
        check_shape(z, self.in_shape, "z given to Inpainting.prox_data")
        check_shape(y, self.out_shape, "y given to Inpainting.prox_data")
        r = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        r = r.reshape(-1, 1, 1, 1) if r.dim() else r
        m = self._like("mask", self.mask, z).to(z.dtype)
        return (self._adjoint(y) + r * z) / (m + r)


class Matrix(LinearOperator):
    """A dense matrix ``A`` of shape ``(m, n)`` acting on vectors ``(batch, n)``.

    ``Matrix(in_shape, A)``, or ``Matrix(A)`` for vectors of ``n`` entries. With ``in_shape`` the
    input is flattened first (e.g. a Gaussian sensing matrix on 28x28 images). The SVD view is
    computed once, in float64, on first use.
    """

    def __init__(self, in_shape: tuple[int, ...] | None = None, A: torch.Tensor | None = None):
        in_shape, A = mask_after_shape("Matrix", in_shape, A, "A")
        A = torch.as_tensor(A)
        if A.dim() != 2:
            raise InvpriorError(f"Matrix needs a 2-D tensor, got shape {tuple(A.shape)}")
        if A.is_complex():
            raise InvpriorError("Matrix takes a real matrix")
        in_shape = (A.shape[1],) if in_shape is None else tuple(in_shape)
        if math.prod(in_shape) != A.shape[1]:
            raise InvpriorError(f"in_shape {in_shape} has {math.prod(in_shape)} entries but A has {A.shape[1]} columns")
        self.A = A.detach().to(torch.float64).cpu().contiguous()
        self._svd: SVD | None = None
        super().__init__(in_shape, (A.shape[0],))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self._like("A", self.A, x).T

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        y = y.real if y.is_complex() else y
        return (y @ self._like("A", self.A, y)).reshape(y.shape[0], *self.in_shape)

    def dense(self) -> torch.Tensor:
        return self.A.clone()

    def svd(self) -> SVD:
        if self._svd is None:
            U, s, Vh = torch.linalg.svd(self.A, full_matrices=True)
            m, n = self.A.shape
            k = min(m, n)
            s_full = torch.zeros(n, dtype=torch.float64)
            s_full[:k] = s
            shape = self.in_shape

            def Vt(x: torch.Tensor) -> torch.Tensor:
                return x.reshape(x.shape[0], -1) @ self._like("Vh", Vh, x).T

            def V(c: torch.Tensor) -> torch.Tensor:
                return (c @ self._like("Vh", Vh, c)).reshape(c.shape[0], *shape)

            def Ut(y: torch.Tensor) -> torch.Tensor:
                out = torch.zeros((y.shape[0], n), dtype=y.dtype, device=y.device)
                out[:, :k] = y @ self._like("Uk", U[:, :k], y)
                return out

            def Uc(c: torch.Tensor) -> torch.Tensor:
                return c[:, :k] @ self._like("Uk", U[:, :k], c).T

            self._svd = SVD(Vt=Vt, V=V, Ut=Ut, U=Uc, s=s_full)
        return self._svd


class Gradient(LinearOperator):
    """Forward finite differences ``(D_v x, D_h x)``: ``(C, H, W) -> (2, C, H, W)``; ``(d,) -> (1, d)``.

    ``boundary="neumann"`` sets the difference across the last row/column to zero (the TV
    convention); ``"circular"`` wraps around and is diagonalised by the FFT.
    """

    def __init__(self, shape: tuple[int, ...] | torch.Size, boundary: Literal["neumann", "circular"] = "neumann"):
        shape = tuple(int(s) for s in shape)
        if len(shape) == 4:
            shape = shape[1:]
        if boundary not in ("neumann", "circular"):
            raise InvpriorError(f"boundary must be 'neumann' or 'circular', got {boundary!r}")
        self.boundary = boundary
        self.dims = (-2, -1) if len(shape) >= 2 else (-1,)
        super().__init__(shape, (len(self.dims), *shape))

    def _diff(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        d = torch.roll(x, -1, dims=dim) - x
        if self.boundary == "neumann":
            d.narrow(dim, x.shape[dim] - 1, 1).zero_()
        return d

    def _diff_T(self, g: torch.Tensor, dim: int) -> torch.Tensor:
        if self.boundary == "neumann":
            g = g.clone()
            g.narrow(dim, g.shape[dim] - 1, 1).zero_()
        return torch.roll(g, 1, dims=dim) - g

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._diff(x, d) for d in self.dims], dim=1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return sum(self._diff_T(y[:, i], d) for i, d in enumerate(self.dims))  # type: ignore[return-value]

    def fourier_symbol_normal(self, like: torch.Tensor) -> torch.Tensor:
        """``|K|^2`` of ``D^T D`` (circular boundary) in real-FFT layout over the last two axes."""
        if self.boundary != "circular" or len(self.dims) != 2:
            raise InvpriorError("only the circular 2-D gradient is diagonalised by the FFT")
        H, W = self.in_shape[-2:]
        dt = real_dtype(like.dtype)
        ky = torch.fft.fftfreq(H, dtype=dt, device=like.device)
        kx = torch.fft.rfftfreq(W, dtype=dt, device=like.device)
        return (2 - 2 * torch.cos(2 * math.pi * ky))[:, None] + (2 - 2 * torch.cos(2 * math.pi * kx))[None, :]
