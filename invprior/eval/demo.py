"""The demo: a few reconstructions on held-out test images, as report rows (no file I/O here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .. import data
from ..operators import CT, MRI, Blur, Identity, Inpainting, LinearOperator, Matrix, Problem, simulate
from ..priors import Tikhonov
from ..result import Result
from ..solvers import solve
from . import metrics
from .cases import make_case, tikhonov_default
from .report import Panel, ReportRow, measurement_image

__all__ = ["DemoOutput", "baseline", "gmm_demo", "run_demo"]


@dataclass
class DemoOutput:
    rows: list[ReportRow] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    traces: dict[str, list[float]] = field(default_factory=dict)
    gmm: dict[str, object] = field(default_factory=dict)


def baseline(problem: Problem) -> tuple[torch.Tensor, str]:
    """The no-prior reconstruction a user would try first: y itself, FBP, zero-filling, pinv or A^T y."""
    A = problem.operator
    with torch.no_grad():
        if isinstance(A, (Identity, Blur)):
            return problem.y.clone(), "y (no reconstruction)"
        if isinstance(A, CT):
            return A.fbp(problem.y), "FBP"
        if isinstance(A, MRI):
            return A.pinv(problem.y), "zero-filled"
        if isinstance(A, Inpainting):
            return A.pinv(problem.y), "zero-filled"
        if isinstance(A, LinearOperator) and A.has_pinv:
            return A.pinv(problem.y, rcond=1e-3), "pinv (rcond 1e-3)"
        if isinstance(A, LinearOperator):
            return A.T(problem.y), "A^T y"
    raise ValueError("no baseline for a nonlinear operator")


# (case, test image, priors to run); every image here is in the test split
DEMO_CASES = [
    ("deblur", "camera", ("identity", "gradient")),
    ("inpaint", "camera", ("gradient",)),
    ("mri", "mri", ("gradient",)),
    ("ct", "shepp_logan_phantom", ("gradient",)),
]


def _metrics_row(case: str, method: str, est: torch.Tensor, problem: Problem, seconds: float, evals: int) -> dict:
    x = problem.truth
    return {
        "case": case,
        "method": method,
        "PSNR": metrics.psnr(est, x),
        "SSIM": metrics.ssim(est.clamp(0, 1), x),
        "chi2": float(problem.chi2(est.to(problem.dtype)).mean()),
        "time s": seconds,
        "A evals": evals,
    }


def run_demo(size: int = 128, seed: int = 0, progress=None) -> DemoOutput:
    """Tikhonov reconstructions (identity and smoothness priors) against the no-prior baseline."""
    out = DemoOutput()
    for case, image_name, kinds in DEMO_CASES:
        x = data.image(image_name, size)
        A, sigma, desc = make_case(case, x.shape)
        problem = simulate(A, x, sigma, seed=seed)
        y_img, y_title = measurement_image(problem)
        row = ReportRow(f"{desc}\n({image_name})", [Panel(x[0], "truth"), Panel(y_img, y_title)])
        t0 = time.perf_counter()
        e0 = A.evals
        base, base_name = baseline(problem)
        row.metrics.append(_metrics_row(case, base_name, base, problem, time.perf_counter() - t0, A.evals - e0))
        base_panel = Panel(base[0], f"{base_name}\n{metrics.psnr(base, x):.2f} dB")
        if base[0].shape == y_img.shape and torch.allclose(base[0].clamp(0, 1).to(y_img.dtype), y_img):
            row.panels[-1] = base_panel  # the measurement is its own baseline (blur, inpainting, MRI)
        else:
            row.panels.append(base_panel)
        best = None
        for kind in kinds:
            weight = tikhonov_default(case, kind)
            prior = Tikhonov(weight, kind=kind, center=0.5 if kind == "identity" else 0.0)
            r = solve(problem, prior, method="tikhonov")
            label = f"tikhonov-{kind}"
            out.results[f"{case}-{label}"] = r
            if r.diagnostics.iterations:
                out.traces[f"{case} ({label}, CG)"] = r.diagnostics.loss_trace
            p = metrics.psnr(r.mean, x)
            row.metrics.append(
                _metrics_row(
                    case,
                    f"{label} (w={weight:g})",
                    r.mean,
                    problem,
                    r.diagnostics.wall_time,
                    r.diagnostics.operator_evals,
                )
            )
            row.panels.append(Panel(r.mean[0], f"{label}\n{p:.2f} dB"))
            if best is None or p > best[0]:
                best = (p, r.mean, label)
        assert best is not None
        err = (best[1] - x).abs()[0]
        row.panels.append(Panel(err, f"|error| {best[2]}", cmap="magma", vmin=0.0, vmax=0.25))
        out.rows.append(row)
        if progress is not None:
            progress(case)
    out.gmm = gmm_demo(seed=seed)
    if progress is not None:
        progress("gmm")
    return out


def gmm_demo(seed: int = 0, n: int = 2000) -> dict[str, object]:
    """Exact posterior sampling for the 2-D, 25-component mixture of the MCGdiff benchmark."""
    prior = data.GaussianMixture.mcgdiff(2, seed=seed)
    A, sigma_y = data.GaussianMixture.mcgdiff_measurement(2, 1, seed=seed)
    x_true = prior.sample(1, seed=seed + 1, dtype=torch.float64)
    problem = simulate(Matrix(A), x_true, sigma_y, seed=seed + 2)
    r = solve(problem, prior, method="exact", n_samples=n, seed=seed)
    r2 = solve(problem, prior, method="exact", n_samples=n, seed=seed + 100)
    prior_samples = prior.sample(n, seed=seed + 3, dtype=torch.float64)
    return {
        "A": A,
        "y": problem.y,
        "sigma_y": sigma_y,
        "truth": x_true,
        "posterior": r.samples[:, 0],
        "prior": prior_samples,
        "sw_exact_vs_exact": metrics.sliced_wasserstein(r.samples[:, 0], r2.samples[:, 0], seed=seed),
        "sw_prior_vs_exact": metrics.sliced_wasserstein(prior_samples, r.samples[:, 0], seed=seed),
        "weights": r.diagnostics.extra["posterior_weights"][0],
        "time": r.diagnostics.wall_time,
    }
