"""Evaluation: metrics, benchmarks and reports."""

from .calibration import Calibration, calibrate, coverage_curve
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
from .trust_report import Flag, Trust, plausibility, trust

__all__ = [
    "Calibration",
    "Flag",
    "Trust",
    "calibrate",
    "chi2",
    "coverage",
    "coverage_curve",
    "frechet_distance",
    "frechet_distance_from_features",
    "plausibility",
    "psnr",
    "rmse",
    "sliced_wasserstein",
    "ssim",
    "trust",
]
