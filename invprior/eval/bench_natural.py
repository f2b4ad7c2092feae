"""Diffusion samplers beside the classical and plug-and-play methods on the natural test photographs
(``invprior bench natural``).

Problems: grey test photographs at 128² (``--size``; a subset also at 256²), or with ``--channels 3``
the colour ones (astronaut, grace_hopper) in RGB, every operator acting on all three channels; five
tasks: 70% random inpainting, box inpainting (30% side), Gaussian deblurring (σ = 2 px, noise 0.02), SR
×4 and Cartesian MRI ×4 (noise 0.01 for all but deblurring), fixed seeds. Rows: TV (FISTA, the
validation-tuned weight of ``bench classical``), DPIR and PnP-ADMM with the shipped ``denoiser-natural``
(settings tuned per task on validation images where a tuning exists: ``PNP_SETTINGS``), and the
diffusion samplers with the shipped ``diffusion-natural`` (fully convolutional, trained on 64² train
crops, run here on the whole image; colour images run on its RGB sibling ``diffusion-natural-colour``,
and DPIR/PnP-ADMM's grey denoiser runs channel by channel) at their defaults (for pigdm, dps and
diffpir: the settings tuned for this prior on a validation photograph, from its card), except ``steps``
(``--steps``) and ``n_samples`` (``--samples``). A sampler whose needs a task does not meet is left out
of that task (e.g. ``ddnm`` needs a pseudo-inverse).

Columns: PSNR and SSIM of the mean (the estimate for MAP methods), χ² of the mean, coverage of the
90% per-pixel intervals of the samples (samplers only), seconds per image (all samples together, on
one thread). Values are means over the images. Rows are cached per (image, task, method, settings)
in ``natural.jsonl`` beside the report, so a run can resume and the tasks can be split across
processes (``--task``); the report is rebuilt from every cached row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import zoo
from ..data.images import image
from ..operators import simulate
from ..priors import TV, LearnedDenoiser
from ..solvers import get, solve
from .cases import make_case, regulariser_default
from .metrics import coverage, psnr, ssim
from .report import Panel, ReportRow, markdown_table, measurement_image, save_grid

__all__ = ["IMAGES", "METHODS", "TASKS", "bench", "report"]

IMAGES = ("camera", "coins", "astronaut", "grace_hopper")
COLOUR_IMAGES = ("astronaut", "grace_hopper")  # the colour test photographs (``--channels 3``)
# name -> (case, params, noise)
TASKS: dict[str, tuple[str, dict, float]] = {
    "inpaint70": ("inpaint", {"fraction": 0.7}, 0.01),
    "box": ("box", {"size": 0.3}, 0.01),
    "deblur": ("deblur", {"blur_sigma": 2.0}, 0.02),
    "sr4": ("sr", {"factor": 4.0}, 0.01),
    "mri4": ("mri", {"acceleration": 4.0}, 0.01),
}
CLASSICAL = ("TV (fista)", "dpir", "pnp_admm")
# the plug-and-play settings tuned per task on validation images (docs/results/pnp-tuning.md; the
# inpainting ones for both inpainting tasks); other tasks use the methods' (deblurring-tuned) defaults
PNP_SETTINGS = {
    ("dpir", "inpaint70"): {"steps": 24, "sigma_start": 0.4}, ("dpir", "box"): {"steps": 24, "sigma_start": 0.4},
    ("pnp_admm", "inpaint70"): {"sigma_d": 0.04}, ("pnp_admm", "box"): {"sigma_d": 0.04},
    ("pnp_admm", "deblur"): {"sigma_d": 0.08},
}  # fmt: skip
SAMPLERS = ("pigdm", "ddnm", "mm", "dps", "daps", "diffpir")
METHODS = CLASSICAL + SAMPLERS


def _problem(name: str, task: str, size: int, channels: int = 1):
    case, params, noise = TASKS[task]
    x = image(name, size, channels).double()
    A, _, desc = make_case(case, x.shape, **params)
    return x, simulate(A, x, noise, seed=0), desc


def _run(method: str, problem, task: str, steps: int, samples: int, priors: dict):
    if method == "TV (fista)":
        case = TASKS[task][0]
        return solve(problem, TV(regulariser_default(case if case != "box" else "inpaint", "tv")), method="fista")
    if method in ("dpir", "pnp_admm"):
        return solve(problem, priors["denoiser"], method=method, **PNP_SETTINGS.get((method, task), {}))
    opts = {"n_samples": samples, "seed": 0}
    if method != "daps":  # daps: its own steps x ode_steps default
        opts["steps"] = steps
    return solve(problem, priors["diffusion"], method=method, **opts)


def bench(images: tuple[str, ...], tasks: tuple[str, ...], methods: tuple[str, ...], size: int, steps: int,
          samples: int, out: Path, progress: bool = True, channels: int = 1) -> list[dict]:  # fmt: skip
    """Run every missing (image, task, method) row, appending each to ``out/natural.jsonl``.
    ``channels=3``: the photographs in colour, every operator on all three channels, the colour
    prior (``diffusion-natural`` hands colour images to ``diffusion-natural-colour``)."""
    import warnings

    out.mkdir(parents=True, exist_ok=True)
    cache = out / "natural.jsonl"
    figs = _fig_dir(out)
    done = set()
    if cache.exists():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            done.add((r["image"], r["task"], r["method"], r["size"], r["steps"], r["samples"], r.get("channels", 1)))
    priors = {"denoiser": LearnedDenoiser.pretrained(), "diffusion": zoo.load("diffusion-natural")}
    rows = []
    for task in tasks:
        for name in images:
            x, problem, desc = _problem(name, task, size, channels)
            for method in methods:
                key = (name, task, method, size, steps, samples, channels)
                if key in done:
                    continue
                if method in SAMPLERS and not get(method).applies_to(problem, priors["diffusion"]):
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # trust flags: the χ² column says it
                    r = _run(method, problem, task, steps, samples, priors)
                row = {"image": name, "task": task, "method": method, "size": size, "channels": channels,
                       "steps": steps, "samples": samples, "prior": _prior_name(method, priors, problem),
                       "operator": desc, "PSNR": psnr(r.mean, x),
                       "SSIM": ssim(r.mean.clamp(0, 1), x), "chi2": r.diagnostics.chi2[0],
                       "coverage90": coverage(r.samples[:, 0], x[0]) if r.n_samples > 1 else None,
                       "s/image": r.diagnostics.wall_time}  # fmt: skip
                with cache.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
                if name == images[0]:  # the figure's arrays
                    arrays = {"mean": r.mean[0].float().numpy(), "y": _y_image(problem)}
                    if r.n_samples > 1:
                        arrays.update(s0=r.samples[0, 0].float().numpy(), s1=r.samples[1, 0].float().numpy(),
                                      std=r.std[0].float().numpy())  # fmt: skip
                    stem = f"{name}-{task}-{method}-{_variant(size, channels)}"
                    np.savez_compressed(figs / f"{stem}.npz", truth=x[0].numpy(), **arrays)
                if progress:
                    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


def _variant(size: int, channels: int) -> str:
    return f"{size}" + ("-rgb" if channels == 3 else "")


def _prior_name(method: str, priors: dict, problem) -> str:
    """The model a row ran with (a colour image runs on the colour sibling of ``diffusion-natural``)."""
    if method in SAMPLERS:
        return priors["diffusion"].at_shape(problem.operator.in_shape).name
    return getattr(priors["denoiser"], "name", "") if method in ("dpir", "pnp_admm") else ""


def _fig_dir(out: Path) -> Path:
    from ..data.datasets import cache_dir

    d = cache_dir() / "bench-natural" / out.resolve().as_posix().strip("/").replace("/", "_")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _y_image(problem) -> np.ndarray:
    img, _ = measurement_image(problem)
    return img.float().numpy() if img.dim() == 3 else img[None].float().numpy()


def report(out: Path, command: str, took: str) -> list[dict]:
    """Aggregate ``natural.jsonl`` (means over images per task, method, size, channels and settings) into
    ``natural.md``/``natural.json`` and one figure per task and (size, channels)."""
    lines = (out / "natural.jsonl").read_text().splitlines() if (out / "natural.jsonl").exists() else []
    raw = [json.loads(line) for line in lines]
    groups: dict[tuple, list[dict]] = {}
    for r in raw:
        key = (r["task"], r["method"], r["size"], r.get("channels", 1), r["steps"], r["samples"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (task, method, size, channels, steps, samples), rs in groups.items():
        row = {"task": task, "method": method, "size": size, "channels": channels, "images": len(rs)}
        for k in ("PSNR", "SSIM", "chi2", "coverage90", "s/image"):
            vals = [r[k] for r in rs if r[k] is not None]
            row[k] = round(sum(vals) / len(vals), 3 if k in ("SSIM", "coverage90") else 2) if vals else None
        row["settings"] = (
            "" if method in CLASSICAL else f"{samples} samples" + ("" if method == "daps" else f", {steps} steps")
        )
        rows.append(row)
    order = {t: i for i, t in enumerate(TASKS)}
    rows.sort(key=lambda r: (r["channels"], r["size"], order.get(r["task"], 99), METHODS.index(r["method"])))
    md = ["# Diffusion samplers beside TV, DPIR and PnP-ADMM on natural photographs", "",
          f"Command: `{command}` {took}.", "", (__doc__ or "").strip(), ""]  # fmt: skip
    for channels, size in sorted({(r["channels"], r["size"]) for r in rows}):
        what = "colour (RGB)" if channels == 3 else "grey"
        these = [r for r in rows if (r["size"], r["channels"]) == (size, channels)]
        md += [f"## {size}², {what}", "", markdown_table(these), ""]
        for task in TASKS:
            path = _figure(out, task, size, channels)
            if path is not None:
                md += [f"![{task}, {size}², {what}]({path.name})", ""]
    (out / "natural.md").write_text("\n".join(md) + "\n")
    (out / "natural.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    return rows


def _chw(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(a)).float()
    return t[None] if t.dim() == 2 else t  # rows cached before colour: (H, W)


def _figure(out: Path, task: str, size: int = 128, channels: int = 1) -> Path | None:
    """truth, y, DPIR, then for the best sampler (PSNR on the figure's image): 2 samples, mean, std
    (for colour, the std averaged over the channels)."""
    figs = _fig_dir(out)
    tail = f"-{_variant(size, channels)}"
    files = sorted(f for f in figs.glob(f"*-{task}-*{tail}.npz") if f.stem.endswith(tail))
    if not files:
        return None
    by_method = {f.stem.split(f"-{task}-")[1][: -len(tail)]: np.load(f) for f in files}
    ref = next(iter(by_method.values()))
    truth = _chw(ref["truth"])

    def psnr_of(a) -> float:
        return psnr(_chw(a["mean"])[None].double(), truth[None].double())

    panels = [Panel(truth, "truth"), Panel(_chw(ref["y"]), "y")]
    if "dpir" in by_method:
        d = by_method["dpir"]
        panels.append(Panel(_chw(d["mean"]), f"DPIR {psnr_of(d):.1f} dB"))
    samplers = {m: a for m, a in by_method.items() if "std" in a}
    if samplers:
        best = max(samplers, key=lambda m: psnr_of(samplers[m]))
        a = samplers[best]
        panels += [Panel(_chw(a["s0"]), f"{best} sample 1"), Panel(_chw(a["s1"]), f"{best} sample 2"),
                   Panel(_chw(a["mean"]), f"{best} mean {psnr_of(a):.1f} dB"),
                   Panel(_chw(a["std"]).mean(0, keepdim=True), f"{best} std", cmap="magma", vmin=0,
                         vmax=None)]  # fmt: skip
    name = f"natural-{task}.png" if (size, channels) == (128, 1) else f"natural-{task}{tail}.png"
    path = out / name
    save_grid([ReportRow(f"{task}, {size}²", panels)], path, cell=2.2)
    return path
