"""Evaluation: metrics, benchmarks and reports."""

from .metrics import chi2, coverage, psnr, rmse, sliced_wasserstein, ssim

__all__ = ["chi2", "coverage", "psnr", "rmse", "sliced_wasserstein", "ssim"]
