"""Metrics: PSNR, SSIM (scikit-image's implementation), data-fit chi², coverage, sliced Wasserstein."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .._checks import InvpriorError, make_generator

__all__ = [
    "chi2",
    "coverage",
    "frechet_distance",
    "frechet_distance_from_features",
    "psnr",
    "rmse",
    "sliced_wasserstein",
    "ssim",
]

Reduction = Literal["mean", "none"]


def _pair(x: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape != ref.shape:
        if x.dim() == ref.dim() - 1 and x.shape == ref.shape[1:]:
            x = x[None]
        elif ref.dim() == x.dim() - 1 and ref.shape == x.shape[1:]:
            ref = ref[None]
        else:
            raise InvpriorError(f"cannot compare shapes {tuple(x.shape)} and {tuple(ref.shape)}")
    return x.detach().double(), ref.detach().double()


def _reduce(v: torch.Tensor, reduction: Reduction) -> float | torch.Tensor:
    return float(v.mean()) if reduction == "mean" else v


def rmse(x: torch.Tensor, ref: torch.Tensor, reduction: Reduction = "mean") -> float | torch.Tensor:
    x, ref = _pair(x, ref)
    return _reduce(((x - ref) ** 2).flatten(1).mean(1).sqrt(), reduction)


def psnr(
    x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0, reduction: Reduction = "mean"
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(range² / MSE)``, per image then averaged.

    No clipping is applied: an estimate outside [0, 1] pays for it.
    """
    x, ref = _pair(x, ref)
    mse = ((x - ref) ** 2).flatten(1).mean(1).clamp_min(1e-20)
    return _reduce(10 * torch.log10(data_range**2 / mse), reduction)


def ssim(
    x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0, reduction: Reduction = "mean"
) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004) via ``skimage.metrics.structural_similarity``.

    Images ``(B, C, H, W)``; Gaussian-weighted 11x11 windows (sigma 1.5) as in the paper, shrunk for
    small images. Per image, averaged over channels, then over the batch.
    """
    from skimage.metrics import structural_similarity

    x, ref = _pair(x, ref)
    if x.dim() != 4:
        raise InvpriorError(f"ssim needs images (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    small = min(h, w) < 11
    out = []
    for a, b in zip(x.cpu().numpy(), ref.cpu().numpy(), strict=True):
        vals = []
        for ca, cb in zip(a, b, strict=True):
            if small:
                win = min(7, min(h, w) - (1 - min(h, w) % 2))
                vals.append(structural_similarity(ca, cb, data_range=data_range, win_size=max(win, 3)))
            else:
                vals.append(
                    structural_similarity(
                        ca, cb, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                    )
                )
        out.append(float(np.mean(vals)))
    return _reduce(torch.tensor(out, dtype=torch.float64), reduction)


def chi2(problem, x: torch.Tensor, reduction: Reduction = "mean") -> float | torch.Tensor:
    """Data fit ``||y - A x||² / (m Var)``: ≈ 1 at the noise level, ≪ 1 over-fits, ≫ 1 under-fits."""
    return _reduce(problem.chi2(x).double(), reduction)


def coverage(samples: torch.Tensor, truth: torch.Tensor, level: float = 0.9) -> float:
    """Share of entries whose true value lies in the central ``level`` credible interval of ``samples``.

    ``samples``: ``(n, *shape)``; ``truth``: ``shape``. A calibrated posterior gives ≈ ``level``.
    """
    if not 0 < level < 1:
        raise InvpriorError(f"level must be in (0, 1), got {level}")
    if samples.shape[1:] != truth.shape:
        raise InvpriorError(f"samples {tuple(samples.shape)} do not match truth {tuple(truth.shape)}")
    if samples.shape[0] < 2:
        raise InvpriorError("coverage needs at least 2 samples")
    s = samples.detach().double()
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    flat = s.reshape(s.shape[0], -1)
    lo, hi = torch.quantile(flat, q, dim=0)
    t = truth.detach().double().reshape(-1)
    return float(((t >= lo) & (t <= hi)).double().mean())


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_projections: int = 100, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two point clouds ``(n, ...)`` and ``(m, ...)``.

    Mean over ``n_projections`` random unit directions (seeded) of the 1-D W1 distance between the
    projections, computed exactly from sorted samples (quantile functions when ``n != m``).
    """
    a = a.detach().double().reshape(a.shape[0], -1)
    b = b.detach().double().reshape(b.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise InvpriorError(f"the two samples live in different dimensions: {a.shape[1]} and {b.shape[1]}")
    g = make_generator(seed)
    dirs = torch.randn(a.shape[1], n_projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa = torch.sort(a @ dirs, dim=0).values
    pb = torch.sort(b @ dirs, dim=0).values
    if pa.shape[0] == pb.shape[0]:
        return float((pa - pb).abs().mean())
    # W1 = ∫ |F_a^{-1}(u) - F_b^{-1}(u)| du, both quantile functions are step functions
    na, nb = pa.shape[0], pb.shape[0]
    u = torch.unique(torch.cat([torch.arange(1, na + 1) / na, torch.arange(1, nb + 1) / nb]).double())
    du = torch.diff(torch.cat([torch.zeros(1, dtype=torch.float64), u]))
    mid = u - du / 2
    ia = torch.clamp((mid * na).floor().long(), max=na - 1)
    ib = torch.clamp((mid * nb).floor().long(), max=nb - 1)
    return float(((pa[ia] - pb[ib]).abs() * du[:, None]).sum(0).mean())


def frechet_distance_from_features(fa: torch.Tensor, fb: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(n, k)``:
    ``|mu_a - mu_b|² + tr(Sa + Sb - 2 (Sa^½ Sb Sa^½)^½)`` (Heusel et al. 2017, arXiv:1706.08500),
    computed in float64 through the symmetric form (no complex square roots)."""
    import scipy.linalg

    a = fa.detach().double().cpu().numpy()
    b = fb.detach().double().cpu().numpy()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InvpriorError(f"need two (n, k) feature sets with n >= 2 and equal k, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    k = a.shape[1]
    # features after a ReLU can be constant (zero variance): a tiny ridge keeps sqrtm well defined
    sa, sb = np.cov(a, rowvar=False) + 1e-8 * np.eye(k), np.cov(b, rowvar=False) + 1e-8 * np.eye(k)
    ra = scipy.linalg.sqrtm(sa).real
    cross = scipy.linalg.sqrtm(ra @ sb @ ra).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(cross))


def frechet_distance(x: torch.Tensor, y: torch.Tensor, dataset: str, batch: int = 1000) -> float:
    """Fréchet distance of two image sets ``(n, 1, 28, 28)`` in [0, 1] in the 128 penultimate
    features of the zoo classifier trained on ``dataset`` (``classifier-shapes`` or
    ``classifier-digits``): the MNIST practice of FID with a domain classifier."""
    from .. import zoo

    net = zoo.load(f"classifier-{dataset}")

    def feats(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net.features(z[i : i + batch].float()) for i in range(0, len(z), batch)])

    return frechet_distance_from_features(feats(x), feats(y))
