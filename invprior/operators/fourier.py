"""Fourier-domain operators: blur (circular convolution), super-resolution, MRI, structured CS.

Real SVD views of Fourier-diagonal operators use the orthonormal Hartley transform
``H x = Re(F x) - Im(F x)`` (real, symmetric, its own inverse): for a real kernel, ``|K|`` is
symmetric under ``k -> -k``, so ``A^T A = H diag(|K|^2) H`` and ``A = U diag(|K|) H`` with
``U = F^H diag(K / |K|) F H`` orthogonal.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import InvpriorError, check_shape, normalize_image_shape
from .base import SVD, LinearOperator, complex_dtype, looks_like_shape, mask_after_shape, shape_first, warn_old_order

__all__ = ["MRI", "Blur", "CompressedSensing", "SuperResolution", "hartley", "hartley2"]


def hartley2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D Hartley transform over the last two axes (self-inverse)."""
    f = torch.fft.fft2(x, norm="ortho")
    return f.real - f.imag


def hartley(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 1-D Hartley transform over the last axis (self-inverse)."""
    f = torch.fft.fft(x, norm="ortho")
    return f.real - f.imag


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


class Blur(LinearOperator):
    """Circular convolution ``A x = k * x`` with a real 2-D kernel, applied to every channel (FFT).

    The kernel's centre pixel ``(kh // 2, kw // 2)`` is the origin. Constructors:
    ``Blur.gaussian(shape, sigma)``, ``Blur.motion(shape, length, angle)``, or ``Blur(shape, kernel)``.
    A kernel tensor that requires grad makes the operator differentiable in it (blind deblurring:
    ``loss(Blur(shape, k)(x)).backward()`` reaches ``k``); build a new ``Blur`` after each kernel update.
    """

    def __init__(self, shape, kernel: torch.Tensor | np.ndarray):
        shape, kernel = shape_first("Blur", shape, kernel, "kernel")
        if isinstance(kernel, torch.Tensor):  # keeps the autograd graph of a kernel being estimated
            k = kernel.to(torch.float64)
        else:
            k = torch.as_tensor(np.asarray(kernel), dtype=torch.float64)
        if k.dim() != 2:
            raise InvpriorError(f"a blur kernel must be 2-D, got shape {tuple(k.shape)}")
        c, h, w = normalize_image_shape(shape)
        kh, kw = k.shape
        if kh > h or kw > w:
            raise InvpriorError(f"the {kh}x{kw} kernel is larger than the {h}x{w} image")
        pad = torch.zeros(h, w, dtype=torch.float64)
        pad[:kh, :kw] = k
        pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
        self.kernel = k
        self.K_full = torch.fft.fft2(pad)  # (h, w) complex128
        self.K = self.K_full[:, : w // 2 + 1].contiguous()  # rfft layout
        super().__init__((c, h, w), (c, h, w))

    @classmethod
    def gaussian(cls, shape, sigma: float, truncate: float = 3.0) -> Blur:
        """Isotropic Gaussian kernel of standard deviation ``sigma`` pixels, radius ``ceil(truncate*sigma)``."""
        shape, sigma = shape_first("Blur.gaussian", shape, sigma, "sigma")
        if sigma <= 0:
            raise InvpriorError(f"sigma must be > 0, got {sigma}")
        r = max(1, math.ceil(truncate * sigma))
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        g = torch.exp(-(t**2) / (2 * sigma**2))
        k = g[:, None] * g[None, :]
        return cls(shape, k / k.sum())

    @classmethod
    def motion(cls, shape, length: float, angle: float) -> Blur:
        """Linear motion blur over ``length`` pixels at ``angle`` degrees (anti-aliased line kernel)."""
        if not looks_like_shape(shape) and looks_like_shape(angle):  # invprior 0.1: (length, angle, shape)
            warn_old_order("Blur.motion", "length, angle", stacklevel=3)
            shape, length, angle = angle, shape, length
        if length < 1:
            raise InvpriorError(f"motion length must be >= 1 pixel, got {length}")
        r = math.ceil(length / 2) + 1
        k = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
        t = torch.linspace(-length / 2, length / 2, int(20 * length) + 1, dtype=torch.float64)
        a = math.radians(angle)
        px, py = r + t * math.cos(a), r - t * math.sin(a)
        x0, y0 = px.floor().long(), py.floor().long()
        fx, fy = px - x0, py - y0
        for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            k.index_put_((y0 + dy, x0 + dx), wgt, accumulate=True)
        return cls(shape, k / k.sum())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        K = self._like("K", self.K, x, complex_=True)
        return torch.fft.irfft2(torch.fft.rfft2(x) * K, s=x.shape[-2:])

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        y = y.real if y.is_complex() else y
        K = self._like("K", self.K, y, complex_=True)
        return torch.fft.irfft2(torch.fft.rfft2(y) * K.conj(), s=y.shape[-2:])

    def fourier_symbol(self, like: torch.Tensor) -> torch.Tensor:
        return self._like("K", self.K, like, complex_=True)

    def svd(self) -> SVD:
        absK = self.K_full.abs()
        phase = torch.where(absK > 0, self.K_full / absK.clamp_min(1e-300), torch.ones_like(self.K_full))
        c, h, w = self.in_shape
        shape = self.in_shape

        def U(coef: torch.Tensor) -> torch.Tensor:
            z = hartley2(coef.reshape(coef.shape[0], *shape))
            return torch.fft.ifft2(torch.fft.fft2(z) * self._like("phase", phase, z, complex_=True)).real

        def Ut(y: torch.Tensor) -> torch.Tensor:
            z = torch.fft.ifft2(torch.fft.fft2(y) * self._like("phase", phase, y, complex_=True).conj()).real
            return _flat(hartley2(z))

        return SVD(
            Vt=lambda x: _flat(hartley2(x)),
            V=lambda coef: hartley2(coef.reshape(coef.shape[0], *shape)),
            Ut=Ut,
            U=U,
            s=absK.expand(c, h, w).flatten().contiguous(),
        )

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        check_shape(y, self.out_shape, "the measurement given to Blur.pinv")
        K = self._like("K", self.K, y, complex_=True)
        absK = K.abs()
        rcond = 1000 * torch.finfo(absK.dtype).eps if rcond is None else rcond
        keep = absK > rcond * absK.max()
        inv = torch.where(keep, 1.0 / torch.where(keep, K, torch.ones_like(K)), torch.zeros_like(K))
        return torch.fft.irfft2(torch.fft.rfft2(y) * inv, s=y.shape[-2:])

    def prox_data(self, z, y, rho, **kwargs) -> torch.Tensor:
        check_shape(z, self.in_shape, "z given to Blur.prox_data")
        check_shape(y, self.out_shape, "y given to Blur.prox_data")
        r = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        r = r.reshape(-1, 1, 1, 1) if r.dim() else r
        K = self._like("K", self.K, z, complex_=True)
        num = torch.fft.rfft2(y) * K.conj() + r * torch.fft.rfft2(z)
        return torch.fft.irfft2(num / (K.abs() ** 2 + r), s=z.shape[-2:])


class SuperResolution(LinearOperator):
    """Average-pool decimation by an integer ``factor``: ``(C, H, W) -> (C, H/f, W/f)``.

    Rows of ``A`` are disjoint block means, so ``A A^T = I / f²``: every singular value is ``1/f``
    and ``A^+ = f² A^T`` (nearest-neighbour upsampling).
    """

    def __init__(self, shape, factor: int):
        shape, factor = shape_first("SuperResolution", shape, factor, "factor")
        c, h, w = normalize_image_shape(shape)
        f = int(factor)
        if f < 1 or h % f or w % f:
            raise InvpriorError(f"factor {factor} must be a positive integer dividing the image size {h}x{w}")
        self.factor = f
        # orthogonal f²xf² matrix whose first row is the normalised block mean
        q, _ = np.linalg.qr(np.concatenate([np.ones((f * f, 1)), np.eye(f * f)[:, 1:]], axis=1))
        q = q * np.sign(q[0, 0])
        self.Q = torch.as_tensor(q.T.copy(), dtype=torch.float64)  # rows: orthonormal basis
        super().__init__((c, h, w), (c, h // f, w // f))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, self.factor)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        y = y.real if y.is_complex() else y
        f = self.factor
        return y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1) / (f * f)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = self.factor
        return x.reshape(b, c, h // f, f, w // f, f).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // f, w // f, f * f)

    def _unblocks(self, blk: torch.Tensor) -> torch.Tensor:
        b, c, hb, wb, _ = blk.shape
        f = self.factor
        return blk.reshape(b, c, hb, wb, f, f).permute(0, 1, 2, 4, 3, 5).reshape(b, c, hb * f, wb * f)

    def svd(self) -> SVD:
        c, h, w = self.in_shape
        f = self.factor
        m = c * (h // f) * (w // f)
        n = self.n

        def Vt(x: torch.Tensor) -> torch.Tensor:
            coef = self._blocks(x) @ self._like("Q", self.Q, x).T  # (b, c, hb, wb, f²)
            return coef.permute(0, 4, 1, 2, 3).reshape(x.shape[0], -1)  # block-mean coefficients first

        def V(coef: torch.Tensor) -> torch.Tensor:
            blk = coef.reshape(coef.shape[0], f * f, c, h // f, w // f).permute(0, 2, 3, 4, 1)
            return self._unblocks(blk @ self._like("Q", self.Q, coef))

        def Ut(y: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((y.shape[0], n), dtype=y.dtype, device=y.device)
            out[:, :m] = _flat(y)
            return out

        s = torch.zeros(n, dtype=torch.float64)
        s[:m] = 1.0 / f
        return SVD(Vt=Vt, V=V, Ut=Ut, U=lambda coef: coef[:, :m].reshape(coef.shape[0], *self.out_shape), s=s)

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        check_shape(y, self.out_shape, "the measurement given to SuperResolution.pinv")
        return self._adjoint(y) * self.factor**2


def _symmetric(mask: torch.Tensor) -> bool:
    """True when ``mask[k] == mask[-k]`` (indices mod N) over the last two axes."""
    flipped = torch.roll(torch.flip(mask, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    return bool((flipped == mask).all())


class MRI(LinearOperator):
    """Single-coil Cartesian MRI: ``A x = (F x)[mask]``, orthonormal 2-D FFT, complex measurements.

    ``mask`` is a boolean ``(H, W)`` k-space mask in FFT layout (DC at ``[0, 0]``). The measurement
    is the vector of the ``m`` sampled coefficients per channel (flattened). For a real image
    ``(F x)[-k] = conj((F x)[k])``; when the mask is conjugate-symmetric the operator has an exact
    real SVD (Hartley basis, singular values 1 on the sampled set), which ``MRI.cartesian`` ensures.
    """

    def __init__(self, shape=None, mask: torch.Tensor | None = None):
        shape, mask = mask_after_shape("MRI", shape, mask)
        mask = torch.as_tensor(mask).to(torch.bool).cpu()
        if mask.dim() != 2:
            raise InvpriorError(f"the MRI mask must be a 2-D (H, W) k-space mask, got shape {tuple(mask.shape)}")
        c, h, w = normalize_image_shape(shape if shape is not None else mask.shape)
        if tuple(mask.shape) != (h, w):
            raise InvpriorError(f"the MRI mask has shape {tuple(mask.shape)}, expected {(h, w)}")
        self.mask = mask
        self.mask_c = mask.expand(c, h, w).contiguous()
        self.index = torch.nonzero(self.mask_c.flatten(), as_tuple=True)[0]
        self.symmetric = _symmetric(mask)
        super().__init__((c, h, w), (int(self.index.numel()),), complex_output=True)

    @classmethod
    def cartesian(cls, shape, acceleration: float = 4.0, seed: int = 0, center_fraction: float = 0.08) -> MRI:
        """Random phase-encode lines (rows), a fully sampled centre, symmetric under ``k -> -k``.

        About ``H / acceleration`` of the ``H`` lines are kept; ``center_fraction`` of them around DC
        always.
        """
        c, h, w = normalize_image_shape(shape)
        if acceleration < 1:
            raise InvpriorError(f"acceleration must be >= 1, got {acceleration}")
        g = torch.Generator().manual_seed(seed)
        freqs = torch.fft.fftfreq(h) * h  # signed line index in FFT layout
        lines = torch.zeros(h, dtype=torch.bool)
        n_center = max(1, round(center_fraction * h))
        lines[freqs.abs() <= n_center // 2] = True
        target = max(round(h / acceleration), int(lines.sum()))
        # pick pairs {k, -k} at random until the target count is reached
        order = torch.randperm(h, generator=g)
        for i in order.tolist():
            if int(lines.sum()) >= target:
                break
            j = (-i) % h
            lines[i] = lines[j] = True
        mask = lines[:, None].expand(h, w).clone()
        return cls((c, h, w), mask)

    @property
    def acceleration(self) -> float:
        return self.mask.numel() / float(self.mask.sum())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.fft.fft2(x, norm="ortho")
        return k.reshape(x.shape[0], -1)[:, self.index.to(x.device)]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        cdt = complex_dtype(y.dtype)
        full = torch.zeros((y.shape[0], self.n), dtype=cdt, device=y.device)
        full[:, self.index.to(y.device)] = y.to(cdt)
        return torch.fft.ifft2(full.reshape(y.shape[0], *self.in_shape), norm="ortho").real

    def kspace(self, y: torch.Tensor) -> torch.Tensor:
        """Scatter a measurement back onto the full (zero-filled) k-space grid, for display."""
        full = torch.zeros((y.shape[0], self.n), dtype=complex_dtype(y.dtype), device=y.device)
        full[:, self.index.to(y.device)] = y
        return full.reshape(y.shape[0], *self.in_shape)

    def svd(self) -> SVD | None:
        if not self.symmetric:
            return None
        s = self.mask_c.flatten().to(torch.float64)
        shape = self.in_shape

        def U(coef: torch.Tensor) -> torch.Tensor:
            return self._forward(hartley2(coef.reshape(coef.shape[0], *shape)))

        def Ut(y: torch.Tensor) -> torch.Tensor:
            return _flat(hartley2(self._adjoint(y))) * self._like("s", s, y)

        return SVD(
            Vt=lambda x: _flat(hartley2(x)),
            V=lambda coef: hartley2(coef.reshape(coef.shape[0], *shape)),
            Ut=Ut,
            U=U,
            s=s,
        )

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        if not self.symmetric:
            raise InvpriorError("this MRI mask is not conjugate-symmetric: no closed-form pseudo-inverse")
        check_shape(y, self.out_shape, "the measurement given to MRI.pinv")
        return self._adjoint(y)

    def prox_data(self, z, y, rho, **kwargs) -> torch.Tensor:
        if not self.symmetric:
            return super().prox_data(z, y, rho, **kwargs)
        check_shape(z, self.in_shape, "z given to MRI.prox_data")
        check_shape(y, self.out_shape, "y given to MRI.prox_data")
        r = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        r = r.reshape(-1, 1, 1, 1) if r.dim() else r
        # A^T A = F^H M F for a symmetric mask
        m = self._like("mask_c", self.mask_c, z).to(z.dtype)
        rhs = torch.fft.fft2(self._adjoint(y) + r * z, norm="ortho")
        return torch.fft.ifft2(rhs / (m + r), norm="ortho").real


class CompressedSensing(LinearOperator):
    """Compressed sensing with ``m`` measurements of a signal of shape ``shape`` (vector or image).

    ``kind="gaussian"``: a dense matrix with i.i.d. N(0, 1/m) entries (small signals);
    ``kind="structured"``: ``A = sqrt(n/m) S H D`` -- random signs ``D``, the orthonormal Hartley
    transform ``H`` of the flattened signal, ``m`` random rows ``S`` -- O(n log n), ``A A^T = (n/m) I``.
    ``kind="auto"`` picks Gaussian up to 4096 entries. Both have ``E||A x||² = ||x||²``.
    """

    def __init__(self, shape, m: int, seed: int = 0, kind: str = "auto"):
        shape, m = shape_first("CompressedSensing", shape, m, "m")
        shape = tuple(int(s) for s in shape)
        if len(shape) == 4:
            shape = shape[1:]
        n = math.prod(shape)
        if not 1 <= m <= n:
            raise InvpriorError(f"m must be in [1, {n}] for a signal of {n} entries, got {m}")
        if kind == "auto":
            kind = "gaussian" if n <= 4096 else "structured"
        if kind not in ("gaussian", "structured"):
            raise InvpriorError(f"kind must be 'auto', 'gaussian' or 'structured', got {kind!r}")
        self.kind = kind
        g = torch.Generator().manual_seed(seed)
        self._svd: SVD | None = None
        if kind == "gaussian":
            self.matrix = torch.randn(m, n, generator=g, dtype=torch.float64) / math.sqrt(m)
        else:
            self.signs = (torch.randint(0, 2, (n,), generator=g) * 2 - 1).to(torch.float64)
            perm = torch.randperm(n, generator=g)
            self.rows = perm[:m].sort().values
            self.perm = torch.cat([self.rows, perm[m:]])
            self.scale = math.sqrt(n / m)
        super().__init__(shape, (m,))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "gaussian":
            return _flat(x) @ self._like("matrix", self.matrix, x).T
        z = hartley(_flat(x) * self._like("signs", self.signs, x))
        return self.scale * z[:, self.rows.to(x.device)]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        y = y.real if y.is_complex() else y
        if self.kind == "gaussian":
            return (y @ self._like("matrix", self.matrix, y)).reshape(y.shape[0], *self.in_shape)
        full = torch.zeros((y.shape[0], self.n), dtype=y.dtype, device=y.device)
        full[:, self.rows.to(y.device)] = y
        x = self.scale * hartley(full) * self._like("signs", self.signs, y)
        return x.reshape(y.shape[0], *self.in_shape)

    def svd(self) -> SVD:
        if self._svd is not None:
            return self._svd
        shape, n, m = self.in_shape, self.n, self.out_shape[0]
        if self.kind == "gaussian":
            from .basic import Matrix

            self._svd = Matrix(shape, self.matrix).svd()
            return self._svd
        inv_perm = torch.argsort(self.perm)

        def Vt(x: torch.Tensor) -> torch.Tensor:
            return hartley(_flat(x) * self._like("signs", self.signs, x))[:, self.perm.to(x.device)]

        def V(c: torch.Tensor) -> torch.Tensor:
            return (hartley(c[:, inv_perm.to(c.device)]) * self._like("signs", self.signs, c)).reshape(
                c.shape[0], *shape
            )

        def Ut(y: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((y.shape[0], n), dtype=y.dtype, device=y.device)
            out[:, :m] = y
            return out

        s = torch.zeros(n, dtype=torch.float64)
        s[:m] = self.scale
        self._svd = SVD(Vt=Vt, V=V, Ut=Ut, U=lambda c: c[:, :m].clone(), s=s)
        return self._svd

    def dense(self) -> torch.Tensor:
        """The matrix of ``A`` (float64), built column by column for the structured kind."""
        if self.kind == "gaussian":
            return self.matrix.clone()
        eye = torch.eye(self.n, dtype=torch.float64).reshape(self.n, *self.in_shape)
        return self._forward(eye).T.contiguous()
