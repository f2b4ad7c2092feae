"""Diffusion posterior samplers on images with the zoo's diffusion priors (``invprior bench diffusion``).

For each dataset (shapes, digits) the first ``n_images`` test images are measured by each task
(noise ``sigma_y``), and every sampler draws ``n_samples`` posterior samples per image at its
defaults. Reported per (dataset, task, sampler): PSNR and SSIM of the posterior mean, χ² of the
mean, mean per-pixel posterior std, coverage of the central 90% intervals (the share of pixels
whose true value lies inside; 0.9 when calibrated), NFE and wall time. One image grid per
(dataset, task): truth, measurement, two samples, mean and std of each sampler on the first image.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..data import dataset
from ..operators import MRI, Blur, CompressedSensing, Inpainting, SuperResolution, simulate
from ..solvers import get, solve
from .metrics import coverage, psnr, ssim
from .report import Panel, ReportRow, measurement_image, save_grid

__all__ = ["LATENT_SAMPLERS", "SAMPLERS", "SMC_SAMPLERS", "TASKS", "make_operator", "run"]

SAMPLERS = ["ddrm", "ddnm", "pigdm", "mm", "dps", "diffpir", "ald", "reddiff", "daps"]
# SMC rows "tds@x1": n_samples runs whose particles cost F times the network evaluations of a
# 100-step sampler's n_samples draws: at their default 50 steps, N = 2 F particles per run
SMC_SAMPLERS = ["tds@x1", "tds@x4", "mcgdiff@x1", "mcgdiff@x4", "fps_smc@x1", "fps_smc@x4"]
REF_STEPS = 100
# latent-diffusion rows: the samplers of ip.priors.LatentDiffusion with the zoo's ldm-<dataset>
LATENT_SAMPLERS = ["psld", "resample", "resample@pixel"]
TASKS = ["inpaint", "box", "deblur", "sr4", "mri4", "cs"]


def make_operator(task: str, shape: tuple[int, ...]):
    """The operator of a task on ``(B, 1, 28, 28)`` images (fixed seeds)."""
    if task == "inpaint":
        return Inpainting.random(shape, 0.7, seed=0)
    if task == "box":
        return Inpainting.box(shape, 12)
    if task == "deblur":
        return Blur.gaussian(shape, 1.5)
    if task == "sr4":
        return SuperResolution(shape, 4)
    if task == "mri4":
        return MRI.cartesian(shape, 4, seed=0)
    if task == "cs":
        return CompressedSensing(shape, 200, seed=0)
    raise ValueError(f"unknown task {task!r}; choose from {TASKS}")


def solve_defaults(method: str) -> dict:
    return get(method).options()


def _cell(data: str, task: str, name: str, n_images: int, n_samples: int, sigma_y: float, seed: int, prior=None):
    """``(row, grid row or None)`` of sampler ``name`` on ``task`` over ``n_images`` test images of ``data``:
    everything is rebuilt from the arguments and fixed seeds (a Ray task with ``--ray``)."""
    from .. import zoo

    method, _, factor = name.partition("@x")
    latent = method.split("@")[0] in ("psld", "resample")
    if prior is None:
        prior = zoo.load(f"ldm-{data}" if latent else f"diffusion-{data}")
    x = dataset(data, "test")[:n_images]
    problem = simulate(make_operator(task, tuple(x.shape)), x, sigma_y, seed=seed)
    t0 = time.perf_counter()
    opts = {}
    if name == "resample@pixel":
        method, opts = "resample", {"space": "pixel"}
    elif factor:
        steps = solve_defaults(method)["steps"]
        opts = {"n_particles": max(1, round(int(factor) * REF_STEPS / steps))}
    try:
        r = solve(problem, prior, method=method, n_samples=n_samples, seed=seed, **opts)
    except Exception as err:  # a failing sampler is a row of the table, not a crash
        print(f"{data}/{task}/{name}: {type(err).__name__}: {err}")
        return {"data": data, "task": task, "sampler": name, "error": str(err)[:80]}, None
    dt = time.perf_counter() - t0
    mean = r.mean.clamp(0, 1)
    ok = bool(torch.isfinite(r.samples).all())
    row = {
        "data": data, "task": task, "sampler": name,
        "PSNR": psnr(mean, x) if ok else math.nan, "SSIM": ssim(mean, x) if ok else math.nan,
        "chi2": float(sum(r.diagnostics.chi2) / max(len(r.diagnostics.chi2), 1)),
        "std": float(r.std.mean()) if r.std is not None else math.nan,
        "cover90": float(sum(coverage(r.samples[:, b], x[b]) for b in range(len(x))) / len(x)),
        "NFE": r.diagnostics.nfe * opts.get("n_particles", 1), "time s": dt,
    }  # fmt: skip
    grid = ReportRow(f"{name} ({row['PSNR']:.1f} dB)", [
        Panel(r.samples[0, 0].clamp(0, 1), "sample 1"), Panel(r.samples[1, 0].clamp(0, 1), "sample 2"),
        Panel(mean[0], "mean"), Panel(r.std[0], "std", cmap="magma", vmin=0.0, vmax=None),
    ])  # fmt: skip
    return row, grid


def run(
    datasets=("shapes", "digits"),
    tasks=tuple(TASKS),
    samplers=tuple(SAMPLERS),
    n_images: int = 8,
    n_samples: int = 16,
    sigma_y: float = 0.05,
    out: Path | None = None,
    seed: int = 0,
    priors: dict | None = None,
    ray: str | None = None,
) -> list[dict]:
    """``priors`` maps a dataset to a ``Diffusion`` (default: the zoo's ``diffusion-<dataset>``); the
    latent rows (``LATENT_SAMPLERS``) use the zoo's ``ldm-<dataset>``. ``ray``: each (data, task,
    sampler) cell is one Ray task (zoo priors only); the rows and figures are the same."""
    if ray is not None and priors:
        raise ValueError("--ray runs the zoo's priors (each task loads its own); give priors= without ray")
    jobs = [(d, t, s, n_images, n_samples, sigma_y, seed) for d in datasets for t in tasks for s in samplers]
    if ray is None:
        from .. import zoo

        done, loaded = {}, {}
        for job in jobs:
            latent = job[2].split("@")[0] in ("psld", "resample")
            key = f"ldm-{job[0]}" if latent else f"diffusion-{job[0]}"
            if key not in loaded:  # one prior object per dataset, as before (its evaluation counter too)
                custom = None if latent else (priors or {}).get(job[0])
                loaded[key] = custom if custom is not None else zoo.load(key)
            done[job] = _cell(*job, prior=loaded[key])
            if "error" not in done[job][0]:
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in done[job][0].items()})
    else:
        from .distributed import ray_map

        done = dict(ray_map(_cell, jobs, ray, desc="bench diffusion"))
    rows = []
    for data in datasets:
        for task in tasks:
            cells = [done[j] for j in jobs if j[0] == data and j[1] == task]
            rows += [row for row, _ in cells]
            grid = [g for _, g in cells if g is not None]
            if out is not None and grid:
                x = dataset(data, "test")[:n_images]
                problem = simulate(make_operator(task, tuple(x.shape)), x, sigma_y, seed=seed)
                meas, what = measurement_image(problem)
                head = ReportRow("truth / y", [Panel(x[0], "truth"), Panel(meas, what)])
                out.mkdir(parents=True, exist_ok=True)
                smc_only = all("@x" in n for n in samplers)
                latent_only = all(n.split("@")[0] in ("psld", "resample") for n in samplers)
                part = "-smc" if smc_only else "-latent" if latent_only else ""
                save_grid([head, *grid], out / f"{data}-{task}{part}.png", cell=1.3)
    return rows
