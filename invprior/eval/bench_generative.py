"""When does a generative prior beat sparsity? (``invprior bench generative-map``)

On the first ``n_images`` test images of shapes and digits, noise 0.05: compressed sensing with
m ∈ {25, 50, 100, 200, 400} of 784 measurements (random signs + subsampled orthonormal Hartley
transform), 70% random inpainting, a 12×12 box, and ×4 super-resolution. Rows: Tikhonov (gradient),
TV (FISTA) and wavelet L1 (FISTA) with their weight set by the discrepancy principle
(``weight="auto"``: no tuning on test data), ``csgm`` with the zoo GAN, ``vae_map`` with the zoo
VAE, ``flow_map_x`` / ``flow_map_z`` with the zoo flow, and ``dip``. The zoo's generative models
were trained on **shapes only**: on digits they are mismatched priors, on purpose.

The **representation error** of a generator is the best PSNR it can reach on the truth itself,
``max_z PSNR(G(z), x)`` (Adam on ``||G(z) - x||²`` from 8 restarts); a method that plateaus near
it is limited by its prior, one far below it by its optimisation or by the data. A flow has no
representation error (it is invertible); for the flow rows the column ``obj gap`` plays that role:
the method's objective at its estimate minus the same objective at the truth (nats, mean over
images). A positive gap is an optimisation failure (the truth scores better and was not found); a
negative one means the objective itself prefers the estimate to the truth (the prior's fault).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data import dataset
from ..operators import CompressedSensing, Inpainting, SuperResolution, simulate
from ..priors import TV, Tikhonov, WaveletL1
from ..solvers import solve
from .metrics import psnr, ssim

__all__ = ["METHODS", "TASKS", "plot_cs", "representation_psnr", "run"]

TASKS = ["cs25", "cs50", "cs100", "cs200", "cs400", "inpaint", "box", "sr4"]
METHODS = ["tikhonov", "tv", "wavelet", "csgm", "vae_map", "flow_map_x", "flow_map_z", "dip"]


def _operator(task: str, shape):
    if task.startswith("cs"):
        return CompressedSensing(shape, int(task[2:]), seed=0)
    if task == "inpaint":
        return Inpainting.random(shape, 0.7, seed=0)
    if task == "box":
        return Inpainting.box(shape, 12)
    if task == "sr4":
        return SuperResolution(shape, 4)
    raise ValueError(task)


def representation_psnr(G, x: torch.Tensor, steps: int = 300, restarts: int = 8, seed: int = 0) -> torch.Tensor:
    """Per image: the best PSNR of ``G(z)`` to ``x`` over ``z`` (projection onto the generator's range)."""
    g = torch.Generator().manual_seed(seed)
    B = x.shape[0]
    z = torch.randn(restarts * B, G.latent_dim, generator=g).requires_grad_(True)
    target = x.repeat(restarts, 1, 1, 1)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        with torch.enable_grad():
            loss = ((G(z) - target) ** 2).flatten(1).sum(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
        opt.step()
    with torch.no_grad():
        mse = ((G(z) - target) ** 2).flatten(1).mean(1).reshape(restarts, B).min(0).values
    return -10 * torch.log10(mse.clamp_min(1e-12))


def _run_method(name: str, problem, priors):
    if name == "tikhonov":
        return solve(problem, Tikhonov(weight="auto", kind="gradient"), method="tikhonov")
    if name == "tv":
        return solve(problem, TV(weight="auto"), method="fista")
    if name == "wavelet":
        return solve(problem, WaveletL1(weight="auto"), method="fista")
    if name == "csgm":
        return solve(problem, priors["gan"], method="csgm")
    if name == "vae_map":
        return solve(problem, priors["vae"], method="vae_map")
    if name in ("flow_map_x", "flow_map_z"):
        return solve(problem, priors["flow"], method=name)
    if name == "dip":
        return solve(problem, None, method="dip")
    raise ValueError(name)


def _objective_gap(name: str, problem, priors, result, truth: torch.Tensor) -> float | None:
    """Flow MAP objective (lam = 1, the default) at the estimate minus at the truth, mean over images.
    The estimate's value is the one the method reports (computed at its latent: re-evaluating
    ``log p`` at a pixel estimate on the edge of the flow's box is numerically unreliable)."""
    if name not in ("flow_map_x", "flow_map_z"):
        return None
    flow = priors["flow"]
    with torch.no_grad():
        if name == "flow_map_x":
            at_truth = problem.nll(truth) - flow.log_prob(truth)
        else:
            at_truth = problem.nll(truth) + 0.5 * (flow.forward(truth)[0] ** 2).sum(1)
    reached = torch.tensor(result.diagnostics.extra["objective"], dtype=at_truth.dtype)
    return float((reached - at_truth).mean())


def _priors() -> dict:
    from .. import zoo

    return {"gan": zoo.load("gan-shapes"), "vae": zoo.load("vae-shapes"), "flow": zoo.load("flow-shapes")}


def _cell(data: str, task: str, name: str, n_images: int, sigma_y: float) -> dict:
    """One row: ``name`` on ``task`` over the first ``n_images`` test images of ``data`` (a Ray task
    with ``--ray``; everything it needs is rebuilt from these arguments and fixed seeds)."""
    x = dataset(data, "test")[:n_images]
    problem = simulate(_operator(task, tuple(x.shape)), x, sigma_y, seed=0)
    priors = _priors()
    t0 = time.perf_counter()
    try:
        r = _run_method(name, problem, priors)
    except Exception as err:  # a failing method is a row of the table, not a crash
        return {"data": data, "task": task, "method": name, "error": str(err)[:80]}
    mean = r.mean.clamp(0, 1).float()
    gap = _objective_gap(name, problem, priors, r, x)
    row = {
        "data": data, "task": task, "method": name, "PSNR": psnr(mean, x), "SSIM": ssim(mean, x),
        "chi2": float(sum(r.diagnostics.chi2) / max(len(r.diagnostics.chi2), 1)),
        "time s": time.perf_counter() - t0,
    }  # fmt: skip
    if gap is not None:
        row["obj gap"] = gap
    return row


def run(
    datasets=("shapes", "digits"),
    tasks=tuple(TASKS),
    methods=tuple(METHODS),
    n_images: int = 8,
    sigma_y: float = 0.05,
    out: Path | None = None,
    ray: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """Returns (rows, representation rows). ``ray``: run each (data, task, method) cell as a Ray task
    (``invprior.eval.distributed``; ``"local"``: this machine's cores); the rows are the same."""
    priors = _priors()
    rep = []
    for data in datasets:
        x = dataset(data, "test")[:n_images]
        for kind in ("gan", "vae"):
            p = representation_psnr(priors[kind], x)
            rep.append({"data": data, "generator": f"{kind}-shapes", "best PSNR": float(p.mean())})
    jobs = [(data, task, name, n_images, sigma_y) for data in datasets for task in tasks for name in methods]
    if ray is None:
        done = {job: _cell(*job) for job in jobs}
    else:
        from .distributed import ray_map

        done = dict(ray_map(_cell, jobs, ray, desc="bench generative-map"))
    rows = [done[job] for job in jobs]  # the single-process order, however the tasks finished
    for row in rows:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    if out is not None:
        plot_cs(rows, rep, out)
    return rows, rep


def plot_cs(rows, rep, out: Path) -> None:
    """``out/generative-map-cs.png``: PSNR against m per method and dataset, with the generators' ranges."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        for name in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["data"] == data and r["method"] == name and "PSNR" in r]
            pts = sorted((int(r["task"][2:]), r["PSNR"]) for r in mine if r["task"].startswith("cs"))
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=name)
        for r in rep:
            if r["data"] == data:
                ax.axhline(r["best PSNR"], ls=":", color="gray")
                ax.text(400, r["best PSNR"], f"{r['generator']} range", fontsize=7, ha="right", va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel("measurements m (of 784)")
        ax.set_ylabel("PSNR of the estimate (dB)")
        ax.set_title(f"{data}: compressed sensing, noise 0.05")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "generative-map-cs.png", dpi=110)
    plt.close(fig)
