"""``invprior bench classical``: operators x priors x solvers on the test images, TV speed, denoisers.

Three tables:

1. reconstructions: every named operator x (Tikhonov, TV, wavelet, patch low rank, NLM, BM3D,
   learned denoiser) with its solver, on test images -- PSNR, SSIM, chi², iterations, time;
2. speed: Gaussian-blur TV deblurring at 128² (sigma_blur 2, noise 0.02): time for FISTA, PGD,
   ADMM and PDHG to come within 0.01 dB of the converged PSNR;
3. denoisers on the test images at noise 0.05 and 0.1 (the learned denoiser against BM3D);
4. one row per classical method (MAP and Langevin) at its defaults on one deblurring problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm import tqdm

from .. import data
from .._checks import InvpriorError
from ..operators import Blur, simulate
from ..priors import TV, LowRankDenoiser, NLMDenoiser, Tikhonov, TVDenoiser, WaveletDenoiser, WaveletL1
from ..solvers import solve
from . import metrics
from .cases import make_case, regulariser_default, tikhonov_default

__all__ = ["denoiser_table", "methods_table", "reconstruction_table", "speed_table"]

OPERATORS = [("deblur", {}), ("inpaint", {}), ("sr", {"factor": 2}), ("sr", {"factor": 4}), ("mri", {}),
             ("ct", {}), ("cs", {})]  # fmt: skip


def _optional_denoisers() -> dict[str, object]:
    out: dict[str, object] = {}
    try:
        from ..priors import BM3DDenoiser

        out["BM3D"] = BM3DDenoiser()
    except InvpriorError:
        pass
    try:
        from ..priors import LearnedDenoiser

        out["learned"] = LearnedDenoiser.pretrained()
    except InvpriorError:
        pass
    return out


def _configs(case: str, quick: bool) -> list[tuple[str, str, Callable[[], object], dict]]:
    """(prior label, method, prior factory, options) for one case."""
    cap = {"steps": 100} if quick else {}  # otherwise the solvers' defaults: they stop on their criterion
    out = [
        ("Tikhonov (gradient)", "tikhonov", lambda: Tikhonov(tikhonov_default(case, "gradient")), {}),
        ("TV", "fista", lambda: TV(regulariser_default(case, "tv")), cap),
        ("wavelet L1", "fista", lambda: WaveletL1(regulariser_default(case, "wavelet")), cap),
        ("NLM (PnP-HQS)", "pnp_hqs", NLMDenoiser, {"steps": 20, "sigma_start": 0.3}),
    ]
    if case in ("deblur", "inpaint") and not quick:
        out.append(("low rank, patches (PnP-HQS)", "pnp_hqs", LowRankDenoiser, {"steps": 15, "sigma_start": 0.3}))
    for name, den in _optional_denoisers().items():
        if quick and name == "BM3D":  # ~8 s per solve even at 32²: not a smoke test's business
            continue
        out.append((f"{name} (DPIR)", "dpir", lambda den=den: den, {"sigma_start": 0.3, "steps": 12}))
    return out


def _recon_cell(img: str, case: str, params: tuple, label: str, size: int, quick: bool) -> dict:
    """One row of the reconstruction table, rebuilt from its arguments (a Ray task with ``--ray``)."""
    x = data.image(img, size)
    A, sigma, desc = make_case(case, x.shape, **dict(params))
    problem = simulate(A, x, sigma, seed=0)
    _, method, make, opts = next(c for c in _configs(case, quick) if c[0] == label)
    try:
        r = solve(problem, make(), method=method, **opts)
    except InvpriorError as e:
        return {"image": img, "operator": desc, "prior": label, "solver": method, "note": str(e)}
    return {
        "image": img, "operator": desc, "prior": label, "solver": method,
        "PSNR": metrics.psnr(r.mean, x), "SSIM": metrics.ssim(r.mean.clamp(0, 1), x),
        "chi2": r.diagnostics.chi2[0], "iterations": r.diagnostics.iterations,
        "converged": _converged(r), "time s": r.diagnostics.wall_time,
    }  # fmt: skip


def _converged(r) -> str:
    """``diagnostics.converged`` as a table cell: "yes"/"no", "" for a method with no criterion."""
    c = r.diagnostics.converged
    return "" if c is None else ("yes" if c else "no")


def reconstruction_table(
    images=("camera", "coins"), size: int = 128, quick: bool = False, ray: str | None = None
) -> list[dict]:
    """Every (image, operator, prior) of the benchmark; ``ray``: each one a Ray task (same rows, in the
    same order; their times are then taken beside the other tasks)."""
    images = images[:1] if quick else images
    jobs = [
        (img, case, tuple(sorted(params.items())), label, size, quick)
        for img in images
        for case, params in OPERATORS
        for label, *_ in _configs(case, quick)
    ]
    if ray is None:
        done = {job: _recon_cell(*job) for job in tqdm(jobs, desc="bench classical: reconstructions")}
    else:
        from .distributed import ray_map

        done = dict(ray_map(_recon_cell, jobs, ray, desc="bench classical: reconstructions"))
    return [done[job] for job in jobs]


def speed_table(image: str = "camera", size: int = 128, weight: float | None = None, quick: bool = False) -> list[dict]:
    """Time for each TV solver to come within 0.01 dB of the converged PSNR (doubling the step count;
    ``quick``: a 300-step reference and at most 320 steps)."""
    x = data.image(image, size)
    problem = simulate(Blur.gaussian(x.shape, 2.0), x, 0.02, seed=0)
    w = regulariser_default("deblur", "tv") if weight is None else weight
    ref_steps, cap = (300, 320) if quick else (2000, 5120)
    ref = solve(problem, TV(w, tol=1e-7, max_iter=1000), method="fista", steps=ref_steps, tol=1e-9)
    p_ref = metrics.psnr(ref.mean, x)
    rows = []
    for method in tqdm(["fista", "pgd", "admm", "pdhg"], desc="bench classical: TV speed"):
        steps, found = 5, None
        while steps <= cap and found is None:
            t0 = time.perf_counter()
            r = solve(problem, TV(w), method=method, steps=steps, tol=0.0)
            dt = time.perf_counter() - t0
            p = metrics.psnr(r.mean, x)
            if abs(p - p_ref) <= 0.01:
                found = (steps, dt, p)
            steps *= 2
        rows.append({
            "solver": method, "iterations": found[0] if found else f"> {cap}",
            "time s": found[1] if found else float("nan"), "PSNR": found[2] if found else p,
            "converged PSNR": p_ref,
        })  # fmt: skip
    return rows


def denoiser_table(size: int = 256, sigmas=(0.05, 0.1), quick: bool = False) -> list[dict]:
    images = data.image_names("test")[: 2 if quick else None]
    dens = {"TV": TVDenoiser(), "wavelet": WaveletDenoiser(), "NLM": NLMDenoiser(), "low rank": LowRankDenoiser(),
            **_optional_denoisers()}  # fmt: skip
    g = torch.Generator().manual_seed(0)
    clean = {n: data.image(n, size) for n in images}
    noisy = {(n, s): clean[n] + s * torch.randn(clean[n].shape, generator=g) for n in images for s in sigmas}
    rows = []
    for name, D in tqdm(dens.items(), desc="bench classical: denoisers"):
        for s in sigmas:
            t0 = time.perf_counter()
            ps = [metrics.psnr(D(noisy[(n, s)], s), clean[n]) for n in images]
            rows.append({"denoiser": name, "sigma": s, "mean PSNR": sum(ps) / len(ps),
                         **{n: p for n, p in zip(images, ps, strict=True)},
                         "time s / image": (time.perf_counter() - t0) / len(images)})  # fmt: skip
    return rows


def methods_table(image: str = "camera", size: int = 128, quick: bool = False) -> list[dict]:
    """Every classical MAP and Langevin method at its defaults on Gaussian deblurring (2 px, noise 0.02);
    samplers also report the mean posterior std and the coverage of their 90% intervals. ``quick``:
    samplers, RED and PGD run 200 steps (samplers: 50 burn-in) instead of their defaults."""
    from ..priors import LearnedDenoiser

    x = data.image(image, size)
    problem = simulate(Blur.gaussian(x.shape, 2.0), x, 0.02, seed=0)
    tv, wav = TV(regulariser_default("deblur", "tv")), WaveletL1(regulariser_default("deblur", "wavelet"))
    tik = Tikhonov(tikhonov_default("deblur", "gradient"))
    den = LearnedDenoiser.pretrained()
    runs = [
        ("tikhonov", tik, {}), ("gd", tik, {}), ("pgd", tv, {}), ("fista", tv, {}), ("admm", tv, {}),
        ("hqs", tv, {}), ("pdhg", tv, {}), ("pnp_admm", den, {}), ("pnp_hqs", den, {}), ("dpir", den, {}),
        ("red", den, {}), ("ula", tik, {}), ("myula", wav, {}), ("pnp_ula", den, {"steps": 1000, "burn_in": 300}),
    ]  # fmt: skip
    if quick:
        short = {"steps": 200, "burn_in": 50}
        runs = [(m, p, short if m in ("ula", "myula", "pnp_ula") else o) for m, p, o in runs]
        runs = [(m, p, {"steps": 200} if m in ("red", "pgd") else o) for m, p, o in runs]  # caps 2000, 10000
    rows = []
    for method, prior, opts in tqdm(runs, desc="bench classical: methods"):
        r = solve(problem, prior, method=method, **opts)
        row = {
            "method": method, "prior": type(prior).__name__, "PSNR": metrics.psnr(r.mean, x),
            "SSIM": metrics.ssim(r.mean.clamp(0, 1), x), "chi2": r.diagnostics.chi2[0],
            "iterations": r.diagnostics.iterations, "converged": _converged(r), "time s": r.diagnostics.wall_time,
            "mean std": float("nan"), "90% coverage": float("nan"),
        }  # fmt: skip
        if r.std is not None:
            row["mean std"] = float(r.std.mean())
            row["90% coverage"] = metrics.coverage(r.samples[:, 0], x[0], 0.9)
        rows.append(row)
    return rows
