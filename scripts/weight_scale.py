"""How the best regulariser weight moves with the noise level (validation images only).

    python scripts/weight_scale.py [--threads 1]   # writes docs/results/weight-scale.md (+ .json)

For denoising, Gaussian deblurring (sigma 2 px) and 70% random inpainting at noise
sigma = 0.01, 0.02, 0.05, 0.1, it finds the best TV, wavelet-L1, patch low-rank and gradient-Tikhonov
weight (a log grid, PSNR mean over two validation photographs at 128x128; low rank on denoising only)
in absolute units,
``½||Ax - y||² / sigma² + w R(x)``,
and prints ``w``, ``w·sigma`` and ``w·sigma²`` (the peer's ``½||Ax - y||² + lam R(x)`` has
``lam = w·sigma²``). The convention whose best weight moves least with sigma is the one a user can
guess. It also records the PSNR lost by using one fixed weight for every sigma in each convention.
The result chose invprior's convention: TV, wavelet, DCT and low-rank weights are relative to the
noise (``w·sigma``), Tikhonov's is absolute (a precision); see the regularisers' module docstring.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import invprior as ip
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128
IMAGES = ("moon", "clock")
SIGMAS = (0.01, 0.02, 0.05, 0.1)
TASKS = {
    "denoise": lambda s: ip.operators.Identity(s),
    "deblur": lambda s: ip.operators.Blur.gaussian(s, 2.0),
    "inpaint": lambda s: ip.operators.Inpainting.random(s, missing=0.7, seed=0),
}
REGS = {
    "tv": (ip.priors.TV, "pdhg"),
    "wavelet": (ip.priors.WaveletL1, "fista"),
    "lowrank": (lambda weight: ip.priors.NuclearNorm(weight, mode="patches"), "fista"),
    "tikhonov": (lambda weight: ip.priors.Tikhonov(weight, kind="gradient"), "tikhonov"),
}
GRID = np.logspace(-1, 4, 21)  # weights in invprior's convention


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    xs = [ip.data.image(n, SIZE) for n in IMAGES]
    table: dict = {}  # (reg, task, sigma) -> list of mean PSNR over the grid
    # patch low rank (an iterated block-matching prox) only on denoising: one deblurring sweep took > 15 min
    jobs = [(r, t, s) for r in REGS for t in TASKS for s in SIGMAS if r != "lowrank" or t == "denoise"]
    for reg, task, sigma in tqdm(jobs, desc="weight scale"):
        make, method = REGS[reg]
        problems = [ip.simulate(TASKS[task](x.shape), x, sigma, seed=i) for i, x in enumerate(xs)]
        scores = []
        for w in GRID:
            prior = make(weight=float(w))  # a noise-relative weight is given as w·sigma: the grid stays absolute
            prior = make(weight=float(w) * sigma) if prior.relative_to_noise else prior
            r = [ip.solve(p, prior, method=method) for p in problems]
            scores.append(float(np.mean([ip.eval.psnr(ri.mean, x) for ri, x in zip(r, xs, strict=True)])))
        table[f"{reg}|{task}|{sigma}"] = scores
    rows, loss_rows = [], []
    for reg in REGS:
        for task in TASKS:
            if f"{reg}|{task}|{SIGMAS[0]}" not in table:
                continue
            best_w = []
            for sigma in SIGMAS:
                sc = table[f"{reg}|{task}|{sigma}"]
                i = int(np.argmax(sc))
                best_w.append(GRID[i])
                rows.append(
                    {
                        "prior": reg, "task": task, "sigma": sigma, "best w (ours)": GRID[i],
                        "w·sigma": GRID[i] * sigma, "w·sigma² (peer lam)": GRID[i] * sigma**2,
                        "PSNR": sc[i], "grid edge": i in (0, len(GRID) - 1),
                    }
                )  # fmt: skip
            # the PSNR lost when one weight serves every sigma, in each convention (best fixed value)
            for name, power in (("w (ours)", 0), ("w·sigma", 1), ("w·sigma²", 2)):
                losses = []
                for c in np.logspace(-4, 4, 161):
                    lost = []
                    for sigma in SIGMAS:
                        sc = np.asarray(table[f"{reg}|{task}|{sigma}"])
                        w = c / sigma**power
                        j = int(np.argmin(np.abs(np.log(GRID) - np.log(w))))
                        lost.append(sc.max() - sc[j] if GRID[0] <= w <= GRID[-1] else np.inf)
                    losses.append((max(lost), c))
                worst, c = min(losses)
                loss_rows.append({"prior": reg, "task": task, "fixed": name, "value": c, "worst loss (dB)": worst})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    secs = time.time() - t0
    (out / "weight-scale.json").write_text(
        json.dumps({"grid": GRID.tolist(), "images": IMAGES, "size": SIZE, "psnr": table}, indent=1)
    )
    md = [
        "# How the best regulariser weight moves with the noise level",
        "",
        f"Command: `python scripts/weight_scale.py --threads {args.threads or torch.get_num_threads()}` "
        f"({secs:.0f} s). Validation images {', '.join(IMAGES)} at {SIZE}², TV by PDHG, wavelet-L1 by FISTA, "
        f"defaults otherwise; weight grid {GRID[0]:g}-{GRID[-1]:g}, {len(GRID)} log steps (half-decade/4).",
        "",
        "Weights here are absolute: the objective is `½||Ax - y||² / sigma² + w R(x)`. invprior's noise-relative "
        "weight (TV, wavelet, DCT, low-rank) is `w·sigma`; the peer's `½||Ax - y||² + lam R(x)` has `lam = w·sigma²`.",
        "",
        markdown_table(rows),
        "",
        "Worst PSNR loss over the four noise levels when one fixed value serves all of them:",
        "",
        markdown_table(loss_rows),
        "",
    ]
    (out / "weight-scale.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
