"""Evaluation: metrics, benchmarks and reports."""

from .metrics import (
    chi2,
    coverage,
    frechet_distance,
    frechet_distance_from_features,
    psnr,
    rmse,
    sliced_wasserstein,
    ssim,
)

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
