"""Blind deblurring (``invprior bench blind``): the blur kernel is unknown and estimated with the image.

Problems: test images of shapes and digits (28²) with the zoo's diffusion priors, and the natural
test photographs (128², grey) with the classical baseline. Each image gets its own kernel from
``random_kernels`` (anisotropic Gaussian, linear motion and camera shake in turn; 9×9 drawn and
zero-padded to 15×15 for the 28² images, 15×15 for the photographs), Gaussian noise 0.02 (28²) or
0.01 (photographs). The methods are given the kernel *size* 15 and nothing else about the kernel.
The samplers run on the 28² sets, the classical ``blind_tv`` on the photographs (its validation-tuned
estimation weight does not carry over to the 28² sets: there it did not beat the blurred input).

Columns: PSNR of the blurred input y; PSNR/SSIM of the estimate (the posterior mean for the samplers); the same for the
non-blind oracle (the same method given the true kernel: ``dps``, ``reddiff``, ``pdhg`` with TV);
the kernel's relative error ``||k̂ - k|| / ||k||`` up to shifts of 2 px (a blind estimate is defined
up to a shift; 1.0 is as far as the zero kernel, a delta kernel is typically 2-4 away); ``fit χ²``,
the mean's χ² under its estimated kernel (about 1 when the pair explains the data to the noise);
seconds per image. Values are means over the images.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data import dataset
from ..data.images import image
from ..operators import Blur, simulate
from ..operators.kernels import kernel_error, random_kernels
from ..priors.regularisers import TV
from ..solvers import solve
from .metrics import psnr, ssim
from .report import Panel, ReportRow, save_grid

__all__ = ["METHODS", "NATURAL", "bench", "make_problems", "run"]

# label -> (method, options, oracle method); "prior" rows use the dataset's diffusion prior, TV rows TV(weight)
METHODS: dict[str, tuple[str, dict, str]] = {
    "blind_dps (gaussian)": ("blind_dps", {"kernel": "gaussian"}, "dps"),
    "blind_dps (motion)": ("blind_dps", {"kernel": "motion"}, "dps"),
    "blind_dps (learned)": ("blind_dps", {"kernel": "learned"}, "dps"),
    "blind_reddiff (gaussian)": ("blind_reddiff", {"kernel": "gaussian"}, "reddiff"),
    "blind_reddiff (learned)": ("blind_reddiff", {"kernel": "learned"}, "reddiff"),
    "blind_tv": ("blind_tv", {}, "pdhg"),
}
NATURAL = ("camera", "astronaut", "coins", "grace_hopper", "mri", "shepp_logan_phantom")
TV_WEIGHT = 0.1  # noise-relative; absolute 10 at the photographs' noise 0.01, the classical deblurring default


def make_problems(data: str, split: str, n: int):
    """``n`` blind problems of one dataset: ``[(name, problem, true kernel)]``; kernels and noise are
    seeded per split (test 100, val 200), so tuning never sees a test kernel."""
    seed = 100 if split == "test" else 200
    if data == "natural":
        names = NATURAL[:n] if split == "test" else ("moon", "text", "cell", "clock")[:n]
        ks = random_kernels(max(64, len(names)), 15, seed=seed)  # the i-th problem's kernel does not depend on n
        out = []
        for i, name in enumerate(names):
            x = image(name, 128).double()
            out.append((name, simulate(Blur(x.shape, ks[i]), x, 0.01, seed=seed + i), ks[i]))
        return out
    x = dataset(data, split)[:n].double()  # type: ignore[arg-type]
    ks = torch.nn.functional.pad(random_kernels(max(64, n), 9, seed=seed), (3, 3, 3, 3))
    return [(f"{data}[{i}]", simulate(Blur(x[i : i + 1].shape, ks[i]), x[i : i + 1], 0.02, seed=seed + i), ks[i])
            for i in range(n)]  # fmt: skip


def run(label: str, problem, k_true: torch.Tensor, prior, options: dict, samples: int, steps: int,
        oracles: dict | None = None) -> dict:  # fmt: skip
    """One blind solve and its oracle on one problem: metrics, kernel and the estimates. ``oracles``:
    a cache of oracle results keyed by (oracle method, problem id); ``None``: no oracle."""
    method, base, oracle = METHODS[label]
    opts = {**base, **options}
    sampler = method != "blind_tv"
    run_opts = {"n_samples": samples, "steps": steps, "seed": 0} if sampler else {}
    x = problem.truth
    t = time.perf_counter()
    r = solve(problem, prior, method=method, kernel_size=15, **run_opts, **opts)
    secs = time.perf_counter() - t
    k = r.diagnostics.extra["kernel"][0]
    row = {"y PSNR": psnr(problem.y, x), "PSNR": psnr(r.mean, x), "SSIM": ssim(r.mean, x),
           "kernel error": float(kernel_error(k, k_true)),
           "fit chi2": r.diagnostics.extra["fit_chi2"][0], "s/image": secs,
           "_mean": r.mean[0], "_kernel": k}  # fmt: skip
    if oracles is not None:
        key = (oracle, id(problem))
        if key not in oracles:
            oracles[key] = solve(problem, prior, method=oracle, **run_opts).mean
        o = oracles[key]
        row.update({"oracle PSNR": psnr(o, x), "oracle SSIM": ssim(o, x), "_oracle": o[0]})
    return row


def _kernel_panel(k: torch.Tensor, side: int, title: str) -> Panel:
    img = torch.nn.functional.interpolate((k / k.max())[None, None].float(), size=(side, side), mode="nearest")[0]
    return Panel(img, title, cmap="gray")


def bench(datas: tuple[str, ...], labels: tuple[str, ...], images: int, samples: int, steps: int, out: Path,
          split: str = "test", options: dict | None = None, oracle: bool = True,
          progress: bool = True) -> list[dict]:  # fmt: skip
    """Every label on every dataset (TV rows only on ``natural``), mean metrics per (data, label); a
    figure per dataset (truth, y, oracle, estimates; a second row: the true and estimated kernels)."""
    from .. import zoo

    rows = []
    for data in datas:
        problems = make_problems(data, split, images)
        prior_d = None if data == "natural" else zoo.load(f"diffusion-{data}")
        results: dict[str, list[dict]] = {}
        oracles: dict | None = {} if oracle else None
        for label in labels:
            is_tv = METHODS[label][0] == "blind_tv"
            if (data == "natural") != is_tv:
                continue  # photographs: the classical baseline; 28² sets: the zoo's diffusion priors
            prior = TV(TV_WEIGHT) if is_tv else prior_d
            opts = (options or {}).get(label, {})
            res = [run(label, p, k, prior, opts, samples, steps, oracles) for _, p, k in problems]
            results[label] = res
            row = {"data": data, "method": label}
            for key in ("y PSNR", "PSNR", "SSIM", "kernel error", "fit chi2", "s/image", "oracle PSNR", "oracle SSIM"):
                if key in res[0]:
                    row[key] = round(sum(r[key] for r in res) / len(res), 3 if "SSIM" in key else 2)
            rows.append(row)
            if progress:
                print(row, flush=True)
        if out is not None and results:
            _figure(data, problems, results, out / f"blind-{data}.png")
    return rows


def _figure(data: str, problems, results: dict[str, list[dict]], path: Path) -> None:
    side = problems[0][1].truth.shape[-1]
    grid = []
    for i, (name, p, k) in enumerate(problems[:4]):
        first_label = next(iter(results))
        oracle = results[first_label][i].get("_oracle", torch.zeros_like(p.truth[0]))
        imgs = [Panel(p.truth[0].float(), "truth"), Panel(p.y[0].float(), "y"),
                Panel(oracle.float(), f"oracle ({METHODS[first_label][2]})")]  # fmt: skip
        kers = [_kernel_panel(k, side, "true kernel"), Panel(torch.zeros(1, side, side), ""),
                Panel(torch.zeros(1, side, side), "")]  # fmt: skip
        for label, res in results.items():
            imgs.append(Panel(res[i]["_mean"].float(), f"{label}\n{res[i]['PSNR']:.1f} dB"))
            kers.append(_kernel_panel(res[i]["_kernel"], side, f"err {res[i]['kernel error']:.2f}"))
        grid += [ReportRow(name, imgs), ReportRow("kernels", kers)]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(grid, path, cell=1.6)
