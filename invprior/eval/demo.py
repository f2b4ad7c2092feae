"""The demo: a few reconstructions on held-out test images, as report rows (no file I/O here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .. import data
from .._checks import InvpriorError
from ..operators import CT, MRI, Blur, Identity, Inpainting, LinearOperator, Matrix, Problem, simulate
from ..priors import TV, Tikhonov, WaveletL1
from ..result import Result
from ..solvers import solve
from . import metrics
from .cases import make_case, regulariser_default, tikhonov_default
from .report import Panel, ReportRow, measurement_image

__all__ = ["DemoOutput", "baseline", "gmm_demo", "run_demo"]


@dataclass
class DemoOutput:
    rows: list[ReportRow] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    traces: dict[str, list[float]] = field(default_factory=dict)
    gmm: dict[str, object] = field(default_factory=dict)
    sampling: list[ReportRow] = field(default_factory=list)  # posterior sampling with generative priors
    latent: list[ReportRow] = field(default_factory=list)  # latent MAP against TV
    natural_size: int = 64


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


def _learned_or_tv():
    """The shipped learned denoiser, or the TV denoiser when no weights are shipped yet."""
    from ..priors.denoisers import LearnedDenoiser, TVDenoiser

    try:
        return LearnedDenoiser.pretrained(), "learned"
    except InvpriorError:  # no weights in this checkout
        return TVDenoiser(), "TV denoiser"


# (case, test image, [(label, method, prior factory(case), options)]); every image is in the test split
def _methods(case: str) -> list[tuple[str, str, object, dict]]:
    tik = Tikhonov(tikhonov_default(case, "gradient"), kind="gradient")
    tv = TV(regulariser_default(case, "tv"))
    wav = WaveletL1(regulariser_default(case, "wavelet"))
    den, den_name = _learned_or_tv()
    out = [
        ("tikhonov", "tikhonov", tik, {}),
        ("TV (fista)", "fista", tv, {"steps": 200}),
        ("wavelet (fista)", "fista", wav, {"steps": 200}),
    ]
    if case in ("deblur", "sr"):
        out.append((f"DPIR ({den_name})", "dpir", den, {}))
    elif case in ("inpaint", "mri"):
        # large missing regions need a large first denoising level
        out.append((f"PnP-HQS ({den_name})", "pnp_hqs", den, {"sigma_start": 0.5, "steps": 40}))
    return out


DEMO_CASES = [("deblur", "camera"), ("inpaint", "camera"), ("mri", "mri"), ("ct", "shepp_logan_phantom")]


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
    """Classical reconstructions (Tikhonov, TV, wavelet, plug-and-play) against the no-prior baseline,
    a Langevin sampler's uncertainty, exact posterior sampling on a Gaussian mixture, posterior
    sampling with the zoo's diffusion priors and latent MAP (``generative_demo``; the photograph at
    ``min(size, 64)``² to keep the demo within two minutes)."""
    out = DemoOutput()
    for case, image_name in DEMO_CASES:
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
        std_panel = None
        for label, method, prior, opts in _methods(case):
            r = solve(problem, prior, method=method, seed=seed, **opts)
            out.results[f"{case}-{method}-{type(prior).__name__}"] = r
            if case == "deblur" and method in ("fista", "tikhonov") and len(r.diagnostics.loss_trace) > 1:
                out.traces[f"{label}"] = r.diagnostics.loss_trace
            p = metrics.psnr(r.mean, x)
            name = f"{label} (w={prior.weight:g})" if hasattr(prior, "weight") else label
            row.metrics.append(
                _metrics_row(case, name, r.mean, problem, r.diagnostics.wall_time, r.diagnostics.operator_evals)
            )
            row.panels.append(Panel(r.mean[0], f"{label}\n{p:.2f} dB"))
            if best is None or p > best[0]:
                best = (p, r.mean, label)
            if case == "deblur" and label.startswith("wavelet"):
                # a short MYULA run started at the wavelet MAP: uncertainty around it (a short chain
                # under-explores, so this std is a lower bound on the posterior's)
                ms = solve(problem, prior, method="myula", seed=seed, x0=r.mean, steps=800, burn_in=100, chains=2)
                out.results[f"{case}-myula-WaveletL1"] = ms
                row.metrics.append(
                    _metrics_row(case, "MYULA wavelet, mean (800 steps from the MAP)", ms.mean, problem,
                                 ms.diagnostics.wall_time, ms.diagnostics.operator_evals)
                )  # fmt: skip
                std_panel = Panel(ms.std[0], "posterior std\n(MYULA, wavelet)", cmap="viridis", vmin=0.0, vmax=None)
        assert best is not None
        err = (best[1] - x).abs()[0]
        row.panels.append(Panel(err, f"|error| {best[2]}", cmap="magma", vmin=0.0, vmax=0.25))
        if std_panel is not None:
            row.panels.append(std_panel)
        out.rows.append(row)
        if progress is not None:
            progress(case)
    out.gmm = gmm_demo(seed=seed)
    if progress is not None:
        progress("gmm")
    out.natural_size = min(size, 64)
    out.sampling, out.latent = generative_demo(seed, out.natural_size, progress)
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


def _std_panel(r: Result, title: str) -> Panel:
    return Panel(r.std[0].mean(0, keepdim=True), title, cmap="magma", vmin=0.0, vmax=None)


def generative_demo(seed: int = 0, natural_size: int = 64, progress=None) -> tuple[list[ReportRow], list[ReportRow]]:
    """The generative half: (1) posterior sampling with the zoo's diffusion priors — a digits box-inpainting
    case whose posterior is multimodal, and a natural photograph with ``diffusion-natural`` beside DPIR —
    and (2) latent MAP (VAE, GAN) against TV on compressed sensing. Returns the two panels' rows."""
    from .. import zoo
    from ..operators import CompressedSensing
    from ..priors import LearnedDenoiser

    sampling: list[ReportRow] = []
    # digits, a 12 px box over the middle: several digits fit the rest
    x = data.dataset("digits", "test")[3:4].double()
    problem = simulate(Inpainting.box(x.shape[1:], 12), x, 0.02, seed=seed)
    r = solve(problem, zoo.load("diffusion-digits"), method="ddnm", steps=50, n_samples=8, seed=seed)
    y_panel = Panel(measurement_image(problem)[0], "y")
    row = ReportRow("digits, 12 px box\n(diffusion-digits, DDNM)", [Panel(x[0], "truth"), y_panel])
    row.panels += [Panel(r.samples[i, 0], f"sample {i + 1}") for i in range(4)]
    row.panels += [Panel(r.mean[0], f"mean\n{metrics.psnr(r.mean, x):.2f} dB"), _std_panel(r, "posterior std")]
    row.metrics.append(_metrics_row("digits box", "DDNM, 8 samples (mean)", r.mean, problem, r.diagnostics.wall_time,
                                    r.diagnostics.operator_evals))  # fmt: skip
    sampling.append(row)
    if progress is not None:
        progress("digits sampling")
    # a natural photograph: DPIR against a diffusion sampler with its std
    xn = data.image("camera", natural_size).double()
    A, sigma, desc = make_case("inpaint", xn.shape)
    pn = simulate(A, xn, sigma, seed=seed)
    # DPIR with its validation-tuned inpainting settings (docs/results/pnp-tuning.md; its deblurring defaults
    # leave 70% holes half-filled), as in ``invprior bench natural``
    d = solve(pn, LearnedDenoiser.pretrained(), method="dpir", seed=seed, steps=24, sigma_start=0.4)
    s = solve(pn, zoo.load("diffusion-natural"), method="ddnm", steps=50, n_samples=4, seed=seed)
    row = ReportRow(f"{desc}\n(camera {natural_size}²)", [Panel(xn[0], "truth"), Panel(measurement_image(pn)[0], "y")])
    row.panels += [Panel(d.mean[0], f"DPIR\n{metrics.psnr(d.mean, xn):.2f} dB")]
    row.panels += [Panel(s.samples[i, 0], f"DDNM sample {i + 1}") for i in range(2)]
    row.panels += [Panel(s.mean[0], f"DDNM mean\n{metrics.psnr(s.mean, xn):.2f} dB"), _std_panel(s, "DDNM std")]
    for name, res in (("DPIR (denoiser-natural)", d), ("DDNM (diffusion-natural), 4 samples", s)):
        row.metrics.append(_metrics_row("natural inpaint", name, res.mean, pn, res.diagnostics.wall_time,
                                        res.diagnostics.operator_evals))  # fmt: skip
    sampling.append(row)
    if progress is not None:
        progress("natural sampling")
    latent: list[ReportRow] = []
    for dname, model, method in (("digits", "vae-digits", "vae_map"), ("shapes", "gan-shapes", "csgm")):
        x = data.dataset(dname, "test")[:1].double()
        A = CompressedSensing(x.shape[1:], int(0.1 * 784), seed)
        problem = simulate(A, x, 0.01, seed=seed)
        tv = solve(problem, TV(regulariser_default("cs", "tv")), method="fista", seed=seed)
        lm = solve(problem, zoo.load(model), method=method, seed=seed)
        base, base_name = baseline(problem)
        row = ReportRow(f"{dname}, CS m/n = 10%", [Panel(x[0], "truth"), Panel(base[0].clamp(0, 1), base_name)])
        for label, res in (("TV (FISTA)", tv), (f"{method} ({model})", lm)):
            row.panels.append(Panel(res.mean[0].clamp(0, 1), f"{label}\n{metrics.psnr(res.mean, x):.2f} dB"))
            row.metrics.append(_metrics_row(f"{dname} cs", label, res.mean, problem, res.diagnostics.wall_time,
                                            res.diagnostics.operator_evals))  # fmt: skip
        latent.append(row)
    if progress is not None:
        progress("latent MAP")
    return sampling, latent
