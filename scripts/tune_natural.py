"""Tune the diffusion samplers' main knob for the natural-image prior on validation photographs.

    python scripts/tune_natural.py [--ray [ADDRESS]]   # writes docs/results/natural-tuning.md and the card's
                                                       # sampler defaults

The samplers' own defaults were tuned with the 28² shapes prior (scripts/tune_diffusion.py) and do
not carry over to ``diffusion-natural`` (ΠGDM's ``data_var = 0.01`` diverges on photographs). Here:
the validation photograph clock (never a test one) at 64², the five tasks of
``invprior bench natural``, 2 posterior samples, 50 steps. The score is the mean PSNR of the
posterior mean over tasks and images. The winners are written to the ``"sampler defaults"`` of
invprior/zoo/diffusion-natural.json, which ``ip.solve`` uses with that prior unless the caller
gives the option. Rows are cached in docs/results/natural-tuning.json (only missing ones run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import torch

import invprior as ip
from invprior.eval.bench_natural import TASKS
from invprior.eval.cases import make_case
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {
    "pigdm": {"data_var": [0.03, 0.1, 0.3, 1.0, 3.0]},
    "dps": {"zeta": [0.3, 1.0, 3.0]},
    "diffpir": {"lam": [0.3, 1.0, 7.0, 30.0]},
}
IMAGES, SIZE, STEPS, SAMPLES = ("clock",), 64, 50, 2


def natural_score(method: str, opts: dict) -> float:
    """Mean PSNR of the posterior mean over the tasks and validation images (one Ray Tune trial with --ray)."""
    warnings.simplefilter("ignore")
    prior = ip.zoo.load("diffusion-natural")
    prior.info = {k: v for k, v in prior.info.items() if k != "sampler defaults"}  # tune from the code's defaults
    scores = []
    for name in IMAGES:
        x = ip.data.image(name, SIZE).double()
        for case, params, noise in TASKS.values():
            A, _, _ = make_case(case, x.shape, **params)
            p = ip.simulate(A, x, noise, seed=0)
            kw = {"n_samples": SAMPLES, "seed": 0, **({} if method == "daps" else {"steps": STEPS})}
            scores.append(ip.eval.psnr(ip.solve(p, prior, method=method, **kw, **opts).mean, x))
    return round(sum(scores) / len(scores), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cache = ROOT / "docs/results/natural-tuning.json"
    rows = json.loads(cache.read_text()) if cache.exists() else []
    done = {json.dumps({k: v for k, v in r.items() if k != "PSNR"}, sort_keys=True) for r in rows}
    points = [
        (method, dict(zip(grid, values, strict=True)))
        for method, grid in GRIDS.items()
        for values in itertools.product(*grid.values())
    ]
    todo = [p for p in points if json.dumps({"method": p[0], **p[1]}, sort_keys=True) not in done]
    for (method, opts), score in zip(todo, grid_map(natural_score, todo, args.ray, desc="natural"), strict=True):
        rows.append({"method": method, **opts, "PSNR": score})
    cache.write_text(json.dumps(rows, indent=1))
    md = ["# Natural-image prior: sampler tuning on validation photographs", "",
          f"Command: `python scripts/tune_natural.py` (last run {time.perf_counter() - t0:.0f} s, one thread"
          f"{' per Ray task' if args.ray else ''}).", "",
          (__doc__ or "").strip(), ""]  # fmt: skip
    best_all = {}
    for method, grid in GRIDS.items():
        sub = [{k: v for k, v in r.items() if k != "method"} for r in rows if r["method"] == method]
        best = max(sub, key=lambda r: r["PSNR"])
        best_all[method] = {k: best[k] for k in grid}
        md += [f"## {method}", "", markdown_table(sub), "", f"Best: {best}", ""]
    (ROOT / "docs/results/natural-tuning.md").write_text("\n".join(md) + "\n")
    card_path = ROOT / "invprior/zoo/diffusion-natural.json"
    card = json.loads(card_path.read_text())
    card["sampler defaults"] = best_all
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
