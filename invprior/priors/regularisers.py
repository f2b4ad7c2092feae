"""Regularisers ``R(x)`` with ``value``, ``prox`` and, where smooth, ``grad`` (the MAP half of the priors).

Conventions: MAP objectives are ``½||A x - y||² / sigma² + R(x)``. The weight of each regulariser
is given in the units where its best value does not move with the noise level (measured on the
validation images, ``python scripts/weight_scale.py`` → docs/results/weight-scale.md):

- ``TV``, ``WaveletL1``, ``DCTL1`` and ``NuclearNorm`` are **relative to the noise level**: in
  ``ip.solve`` the objective is ``½||A x - y||² / sigma² + (weight / sigma) · Phi(x)``, so ``weight=1``
  (the default) is within ~1 dB of the best weight for TV on denoising, deblurring and inpainting at
  sigma 0.01-0.1; the best values lie in about 0.2-2 for TV and wavelets, 6-10 for patch low rank
  (denoising). The peer's ``½||A x - y||² + lam Phi(x)`` has
  ``lam = weight · sigma``. On its own (``value``, ``prox``) or without a Gaussian noise level > 0,
  such a regulariser is ``weight · Phi(x)``; ``R.for_noise(sigma)`` binds it as ``ip.solve`` does.
- ``Tikhonov``'s weight is a prior **precision** (``N(center, I / weight)``), which for a Gaussian
  prior is exactly the noise-independent scale.

``prox(v, tau) = argmin_x ½||x - v||² + tau R(x)``.
Every regulariser accepts ``weight="auto"``: ``ip.solve`` then picks the weight by the
discrepancy principle (see ``invprior.solvers.auto``). Regularisers of the form ``G(K x)`` with
an easy ``prox`` of ``G*`` also expose ``K`` and ``prox_conj`` for primal-dual solvers (PDHG).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Literal

import torch

from .._checks import InvpriorError
from ..operators import Gradient, Identity, LinearOperator, conjugate_gradient
from .transforms import DCT2, Wavelet2D

__all__ = ["DCTL1", "TV", "NuclearNorm", "Regulariser", "Tikhonov", "WaveletL1"]

Weight = float | Literal["auto"]


def _check_weight(weight: Weight) -> float | str:
    if weight == "auto":
        return "auto"
    if isinstance(weight, (str, bool)) or not isinstance(weight, numbers.Real) or not 0 < float(weight) < math.inf:
        hint = " (a zero weight leaves an ill-posed problem without a prior: use a small weight)" if weight == 0 else ""
        raise InvpriorError(f"weight must be a finite number > 0 or 'auto', got {weight!r}{hint}")
    return float(weight)


def _bsum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(1)


def soft(v: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Soft-thresholding, the prox of ``t |.|``."""
    return torch.sign(v) * (v.abs() - t).clamp_min(0)


class Regulariser:
    """Base class: ``weight``, ``value(x) -> (B,)``, ``prox(v, tau)``; optional ``grad``."""

    weight: float | str = 1.0
    smooth: bool = False
    relative_to_noise: bool = False  # the weight is divided by the noise sigma once bound (for_noise)
    noise_sigma: float | None = None

    def with_weight(self, weight: float) -> Regulariser:
        """A copy with another weight in the same units (used by the automatic weight choice)."""
        new = copy.copy(self)
        new.weight = float(weight)
        return new

    def for_noise(self, sigma: float | None) -> Regulariser:
        """This regulariser in a problem of Gaussian noise level ``sigma``: a noise-relative weight
        (``relative_to_noise``) then acts as ``weight / sigma``. ``ip.solve`` does this for you; a
        regulariser already bound, or a ``sigma`` that is not > 0, leaves it as it is."""
        if not self.relative_to_noise or self.noise_sigma is not None or not sigma or not sigma > 0:
            return self
        new = copy.copy(self)
        new.noise_sigma = float(sigma)
        return new

    @property
    def w(self) -> float:
        """The weight that multiplies the penalty in the objective (after the noise binding)."""
        if self.weight == "auto":
            raise InvpriorError(f"{type(self).__name__}(weight='auto') is resolved by ip.solve; give a number here")
        return float(self.weight) / self.noise_sigma if self.noise_sigma else float(self.weight)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prox(self, v: torch.Tensor, tau: float) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        w = self.weight if isinstance(self.weight, str) else f"{self.weight:g}"
        bound = f", for noise sigma {self.noise_sigma:g}" if self.noise_sigma else ""
        return f"{type(self).__name__}(weight={w}{bound})"


class Tikhonov(Regulariser):
    """``R(x) = weight/2 · ||L (x - center)||²`` with ``L = I`` (``kind="identity"``) or the circular
    finite-difference gradient (``kind="gradient"``, a smoothness prior). Tikhonov (1963).

    In MAP problems the data term is ``½||A x - y||² / sigma_y²``, so ``weight`` is a prior
    precision: ``kind="identity"`` is the Gaussian prior ``N(center, I / weight)``.
    """

    smooth = True

    def __init__(self, weight: Weight = 1.0, kind: Literal["identity", "gradient"] = "gradient", center: float = 0.0):
        if kind not in ("identity", "gradient"):
            raise InvpriorError(f"Tikhonov kind must be 'identity' or 'gradient', got {kind!r}")
        self.weight = _check_weight(weight)
        self.kind = kind
        self.center = float(center)

    def __repr__(self) -> str:
        w = self.weight if isinstance(self.weight, str) else f"{self.weight:g}"
        return f"Tikhonov(weight={w}, kind={self.kind!r}, center={self.center:g})"

    def operator(self, shape: tuple[int, ...]) -> LinearOperator:
        """The matrix ``L`` for signals of shape ``shape``."""
        return Identity(shape) if self.kind == "identity" else Gradient(shape, boundary="circular")

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``R(x)`` per batch element."""
        r = self.operator(tuple(x.shape[1:]))(x - self.center)
        return 0.5 * self.w * (r * r).flatten(1).sum(1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        L = self.operator(tuple(x.shape[1:]))
        return self.w * L.normal(x - self.center)

    def lipschitz(self, shape: tuple[int, ...]) -> float:
        """Lipschitz constant of ``grad``: ``weight ||L||²``."""
        return self.w * (1.0 if self.kind == "identity" else 4.0 * min(len(shape), 2))

    def prox(self, v: torch.Tensor, tau: float) -> torch.Tensor:
        """``argmin_x ½||x - v||² + tau R(x)`` (FFT for images, CG for vectors)."""
        t = tau * self.w
        if self.kind == "identity":
            return (v + t * self.center) / (1 + t)
        L = Gradient(tuple(v.shape[1:]), boundary="circular")
        if v.dim() == 4:
            G2 = L.fourier_symbol_normal(v)
            return torch.fft.irfft2(torch.fft.rfft2(v) / (1 + t * G2), s=v.shape[-2:])
        x, _ = conjugate_gradient(lambda z: z + t * L.normal(z), v, v, tol=1e-10, max_iter=1000)
        return x


class TV(Regulariser):
    """Isotropic total variation ``R(x) = weight · sum_ij ||(D x)_ij||_2`` (per channel), Neumann boundary.

    The weight is relative to the noise level: ``ip.solve`` uses ``weight / sigma`` (see the module
    docstring); ``weight=1`` is a good first guess, the best values lie in about 0.2-2.

    Rudin, Osher & Fatemi (1992). ``prox`` solves the dual problem by FGP (Beck & Teboulle 2009,
    IEEE TIP 18(11)) until the duality gap is below ``tol`` times the primal objective (or
    ``max_iter`` iterations); pass a dict as ``warm`` to reuse the dual variable across calls (it also
    counts the inner iterations, ``warm["iterations"]``, and a ``warm["tol"]`` overrides ``tol`` for
    one call: FISTA tightens it as it converges, since a prox solved to 1e-4 throughout left its iterate
    creeping by 2-6e-5 per step after 1500 steps; docs/results/stopping-tuning.md).
    """

    relative_to_noise = True

    def __init__(self, weight: Weight = 1.0, tol: float = 1e-4, max_iter: int = 200):
        self.weight = _check_weight(weight)
        self.tol, self.max_iter = float(tol), int(max_iter)

    @staticmethod
    def K(shape: tuple[int, ...]) -> Gradient:
        return Gradient(shape, boundary="neumann")

    @staticmethod
    def _norms(p: torch.Tensor) -> torch.Tensor:
        """Per-pixel Euclidean norm over the direction axis (dim 1 of (B, 2, C, H, W))."""
        return p.pow(2).sum(1, keepdim=True).sqrt()

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * _bsum(self._norms(self.K(tuple(x.shape[1:]))(x)))

    def prox_conj(self, q: torch.Tensor, s: float) -> torch.Tensor:
        """``prox_{s G*}(q)`` for ``G = weight ||.||_{2,1}``: projection onto the weight-ball."""
        return q / (self._norms(q) / self.w).clamp_min(1.0)

    def prox(self, v: torch.Tensor, tau: float, warm: dict | None = None) -> torch.Tensor:
        gamma = tau * self.w
        if gamma <= 0:
            return v.clone()
        D = self.K(tuple(v.shape[1:]))
        p = warm.get("dual") if warm is not None else None
        if p is None or p.shape != (v.shape[0], *D.out_shape):
            p = torch.zeros((v.shape[0], *D.out_shape), dtype=v.dtype, device=v.device)
        q, t = p, 1.0
        step = 1.0 / (8.0 * gamma)  # ||D||² <= 8
        tol = float(warm.get("tol", self.tol)) if warm is not None else self.tol
        v64 = v.double()  # the duality gap is a small difference of large sums: float64 even for float32 input
        v2 = 0.5 * _bsum(v64 * v64)
        x = v - gamma * D.T(p)
        it = -1
        for it in range(self.max_iter):
            p_new = q + step * D(v - gamma * D.T(q))
            p_new = p_new / self._norms(p_new).clamp_min(1.0)
            t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
            q = p_new + ((t - 1) / t_new) * (p_new - p)
            p, t = p_new, t_new
            if it % 5 == 0 or it == self.max_iter - 1:  # the duality gap costs a gradient: check every 5
                x = v - gamma * D.T(p)
                x64 = x.double()
                primal = 0.5 * _bsum((x64 - v64) ** 2) + gamma * _bsum(self._norms(D(x)).double())
                dual = v2 - 0.5 * _bsum(x64 * x64)
                if bool(((primal - dual) <= tol * primal.abs().clamp_min(1e-12)).all()):
                    break
        x = v - gamma * D.T(p)
        if warm is not None:
            warm["dual"] = p
            warm["iterations"] = warm.get("iterations", 0) + it + 1
        return x


class _TransformL1(Regulariser):
    """``weight · ||T x||_1`` over the coefficients an orthonormal transform ``T`` penalises."""

    relative_to_noise = True

    def _fwd(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def _inv(self, c: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _penalised(self, c: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-coefficient masks (1 = penalised)."""
        raise NotImplementedError

    def value(self, x: torch.Tensor) -> torch.Tensor:
        c = self._fwd(x)
        return self.w * sum(_bsum(ci.abs() * mi) for ci, mi in zip(c, self._penalised(c), strict=True))

    def prox(self, v: torch.Tensor, tau: float, warm: dict | None = None) -> torch.Tensor:
        c = self._fwd(v)
        t = tau * self.w
        return self._inv([torch.where(m > 0, soft(ci, t), ci) for ci, m in zip(c, self._penalised(c), strict=True)])

    # primal-dual view: K = T (orthonormal), G = weight ||.||_1 on the penalised coefficients
    def prox_conj_coeffs(self, q: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.where(m > 0, q_i.clamp(-self.w, self.w), torch.zeros_like(q_i))
                for q_i, m in zip(q, self._penalised(q), strict=True)]  # fmt: skip


class WaveletL1(_TransformL1):
    """``weight · ||W x||_1`` on the detail coefficients of an orthogonal wavelet (approximation free).

    The weight is relative to the noise level: ``ip.solve`` uses ``weight / sigma`` (see the module
    docstring); ``weight=1`` is a good first guess, the best values lie in about 0.3-2.

    ``levels=None`` uses as many levels (up to 4) as the image size allows. The prox is exact:
    soft-thresholding in the wavelet domain (Daubechies, Defrise & De Mol 2004).
    """

    def __init__(self, weight: Weight = 1.0, wavelet: str = "db4", levels: int | None = None):
        self.weight = _check_weight(weight)
        self.wavelet, self.levels = wavelet, levels
        Wavelet2D(wavelet, 1)  # validates the name now, not mid-solve

    def transform(self, shape: tuple[int, ...]) -> Wavelet2D:
        lv = self.levels if self.levels is not None else min(4, Wavelet2D.max_levels(shape[-2], shape[-1]))
        return Wavelet2D(self.wavelet, lv)

    def _fwd(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.transform(tuple(x.shape[1:])).forward(x)

    def _inv(self, c: list[torch.Tensor]) -> torch.Tensor:
        h, w = c[-1].shape[-2] * 2, c[-1].shape[-1] * 2
        return self.transform((h, w)).inverse(c)

    def _penalised(self, c: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.zeros(1, dtype=c[0].dtype, device=c[0].device)] + [
            torch.ones(1, dtype=ci.dtype, device=ci.device) for ci in c[1:]
        ]


class DCTL1(_TransformL1):
    """``weight · ||C x||_1`` on the orthonormal 2-D DCT-II coefficients, except the DC term.

    The weight is relative to the noise level: ``ip.solve`` uses ``weight / sigma`` (module docstring).
    """

    def __init__(self, weight: Weight = 1.0):
        self.weight = _check_weight(weight)

    def _fwd(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [DCT2().forward(x)]

    def _inv(self, c: list[torch.Tensor]) -> torch.Tensor:
        return DCT2().inverse(c[0])

    def _penalised(self, c: list[torch.Tensor]) -> list[torch.Tensor]:
        m = torch.ones(c[0].shape[-2:], dtype=c[0].dtype, device=c[0].device)
        m[0, 0] = 0.0
        return [m]


class NuclearNorm(Regulariser):
    """Low-rank prior: ``weight · ||X||_*``, the nuclear norm of each channel's image matrix (``mode="image"``),
    or of groups of similar patches (``mode="patches"``, Cai, Candès & Shen 2010; Gu et al. 2014).

    ``mode="image"``: ``prox`` is singular-value thresholding, exact. ``mode="patches"``: for
    reference patches on a grid (``stride``), the ``group`` most similar ``patch``-sized patches in a
    ``window`` are stacked into a matrix whose singular values are soft-thresholded, and the
    overlapping estimates are averaged. Overlapping groups make this an approximate prox (it is a
    denoising step, not the prox of a convex function); ``value`` sums the group nuclear norms.
    The weight is relative to the noise level: ``ip.solve`` uses ``weight / sigma`` (module docstring);
    for ``mode="patches"`` the best value measured on denoising was 6-10 at sigma 0.01-0.1.
    """

    relative_to_noise = True

    def __init__(
        self,
        weight: Weight = 1.0,
        mode: Literal["image", "patches"] = "image",
        patch: int = 6,
        group: int = 24,
        stride: int = 3,
        window: int = 12,
    ):
        if mode not in ("image", "patches"):
            raise InvpriorError(f"mode must be 'image' or 'patches', got {mode!r}")
        self.weight = _check_weight(weight)
        self.mode, self.patch, self.group, self.stride, self.window = mode, patch, group, stride, window

    def value(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "image":
            return self.w * _bsum(torch.linalg.svdvals(x))
        groups, _ = self._groups(x)
        return self.w * torch.linalg.svdvals(groups).reshape(x.shape[0], -1).sum(1)

    def prox(self, v: torch.Tensor, tau: float, warm: dict | None = None) -> torch.Tensor:
        t = tau * self.w
        if self.mode == "image":
            U, s, Vh = torch.linalg.svd(v, full_matrices=False)
            return U @ (soft(s, t)[..., None] * Vh)
        return self._patch_svt(v, t)

    # --- patch groups -------------------------------------------------------------------------
    def _groups(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Groups ``(B, C, R, p², group)`` of similar patches and their patch indices ``(R, group)``."""
        B, _, H, W = x.shape
        p = self.patch
        if H < p or W < p:
            raise InvpriorError(f"patches of {p} px do not fit a {H}x{W} image")
        cols = F_unfold(x, p)  # (B, C, p², nh*nw) all patches at stride 1
        nh, nw = H - p + 1, W - p + 1
        ri = torch.arange(0, nh, self.stride)
        rj = torch.arange(0, nw, self.stride)
        if ri[-1] != nh - 1:
            ri = torch.cat([ri, torch.tensor([nh - 1])])
        if rj[-1] != nw - 1:
            rj = torch.cat([rj, torch.tensor([nw - 1])])
        refs_i, refs_j = torch.meshgrid(ri, rj, indexing="ij")
        refs_i, refs_j = refs_i.flatten(), refs_j.flatten()
        # candidate offsets within the search window
        off = torch.arange(-self.window, self.window + 1)
        oi, oj = torch.meshgrid(off, off, indexing="ij")
        ci = (refs_i[:, None] + oi.flatten()[None]).clamp(0, nh - 1)
        cj = (refs_j[:, None] + oj.flatten()[None]).clamp(0, nw - 1)
        cand = ci * nw + cj  # (R, n_cand); duplicates at borders are harmless
        ref = refs_i * nw + refs_j
        feats = cols.mean(1)  # similarity on the channel-mean patch, shared by all channels
        d = ((feats[:, :, cand] - feats[:, :, ref][..., None]) ** 2).sum(1)  # (B, R, n_cand)
        k = min(self.group, cand.shape[1])
        best = d.topk(k, dim=-1, largest=False).indices  # (B, R, k)
        idx = torch.gather(cand.expand(B, -1, -1), 2, best)  # (B, R, k)
        g = torch.stack([cols[b][:, :, idx[b]] for b in range(B)])  # (B, C, p², R, k)
        return g.permute(0, 1, 3, 2, 4), idx

    def _patch_svt(self, v: torch.Tensor, t: float) -> torch.Tensor:
        B, C, H, W = v.shape
        p = self.patch
        g, idx = self._groups(v)  # (B, C, R, p², k)
        U, s, Vh = torch.linalg.svd(g, full_matrices=False)
        g_hat = U @ (soft(s, t)[..., None] * Vh)
        nh, nw = H - p + 1, W - p + 1
        acc = torch.zeros(B, C, p * p, nh * nw, dtype=v.dtype, device=v.device)
        cnt = torch.zeros(B, 1, 1, nh * nw, dtype=v.dtype, device=v.device)
        for b in range(B):
            flat = idx[b].flatten()
            acc[b].index_add_(2, flat, g_hat[b].permute(0, 2, 1, 3).reshape(C, p * p, -1))
            cnt[b].index_add_(2, flat, torch.ones(1, 1, flat.numel(), dtype=v.dtype, device=v.device))
        covered = cnt > 0
        # patches never selected keep their noisy values
        acc = torch.where(covered, acc / cnt.clamp_min(1), F_unfold(v, p))
        return F_fold(acc, p, H, W)


def F_unfold(x: torch.Tensor, p: int) -> torch.Tensor:
    B, C = x.shape[:2]
    return torch.nn.functional.unfold(x, p).reshape(B, C, p * p, -1)


def F_fold(cols: torch.Tensor, p: int, H: int, W: int) -> torch.Tensor:
    """Average overlapping patches back into an image."""
    B, C = cols.shape[:2]
    out = torch.nn.functional.fold(cols.reshape(B, C * p * p, -1), (H, W), p)
    ones = torch.ones(1, p * p, cols.shape[-1], dtype=cols.dtype, device=cols.device)
    norm = torch.nn.functional.fold(ones, (H, W), p)
    return out / norm
