"""Tune the diffusion samplers' main knob on the validation split (never the test split).

    python scripts/tune_diffusion.py [SAMPLER ...] [--ray [ADDRESS]]
    # prints the table and writes docs/results/diffusion-tuning.md

With the zoo's diffusion-shapes prior, the first 4 validation images of shapes, 8 posterior
samples each, noise 0.05, on two tasks (70% random inpainting and Gaussian deblurring, the
operators of ``bench diffusion``): each sampler's guidance/step knob over a small grid. The
score is the mean PSNR of the posterior mean over both tasks; the coverage of 90% intervals is
shown beside it (a sampler can win PSNR by collapsing its spread). The winners are the
function defaults in invprior/solvers/sample/diffusion.py.

Rows are kept in docs/results/diffusion-tuning.json and only missing combinations run, so the grid
can be extended (a winner on the edge of its grid is a reason to extend it) without re-running
the rest (after a change to a sampler's code, delete its rows from the JSON). Positional
arguments restrict the run to those methods.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.bench_diffusion import make_operator
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {
    "dps": {"zeta": [0.3, 1.0, 3.0]},
    "pigdm": {"data_var": [0.01, 0.03, 0.1, 0.3, 1.0]},
    "diffpir": {"lam": [0.1, 0.3, 1.0, 7.0, 30.0]},
    "ddrm": {"eta": [0.5, 0.85, 1.0]},
    "ddnm": {"eta": [0.5, 0.85, 1.0]},
    "ald": {"eps": [0.1, 0.5, 1.0, 2.0]},
    "reddiff": {"lam": [0.05, 0.25, 1.0, 4.0], "lr": [0.03, 0.1]},
    "daps": {"step_size": [0.03, 0.1, 0.3]},
    "mm": {"eta": [0.5, 1.0]},
}


def diffusion_row(method: str, opts: dict) -> dict:
    """The table row of one setting: PSNR and coverage on the validation shapes (one Ray Tune trial)."""
    prior = ip.zoo.load("diffusion-shapes")
    x = ip.data.dataset("shapes", "val")[:4]
    ps, cov = [], []
    for t in ("inpaint", "deblur"):
        p = ip.simulate(make_operator(t, tuple(x.shape)), x, 0.05, seed=0)
        r = ip.solve(p, prior, method=method, n_samples=8, seed=0, **opts)
        ps.append(ip.eval.psnr(r.mean.clamp(0, 1), x))
        cov.append(np.mean([ip.eval.coverage(r.samples[:, b], x[b]) for b in range(len(x))]))
    return {"method": method, **dict(opts.items()), "PSNR inpaint": ps[0], "PSNR deblur": ps[1],
            "mean PSNR": float(np.mean(ps)), "cover90": float(np.mean(cov))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="tune only these samplers")
    add_ray_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    store = ROOT / "docs/results/diffusion-tuning.json"
    old = json.loads(store.read_text()) if store.exists() else []
    rows = list(old)
    done = {(r["method"], *(r.get(k) for g in GRIDS.values() for k in g)) for r in rows}
    todo = []
    for method, grid in GRIDS.items():
        if args.only and method not in args.only:
            continue
        for v in itertools.product(*grid.values()):
            opts = {k: float(val) for k, val in zip(grid, v, strict=True)}
            if (method, *(opts.get(k) for g in GRIDS.values() for k in g)) not in done:
                todo.append((method, opts))
    for row in grid_map(diffusion_row, todo, args.ray, desc="diffusion settings"):
        rows.append(row)
        print(row, flush=True)
    store.write_text(json.dumps(rows, indent=1))
    rows = [r for r in rows if r["method"] in GRIDS]
    rows.sort(key=lambda r: (list(GRIDS).index(r["method"]), *(r.get(k, 0) for k in GRIDS[r["method"]])))
    best = {}
    for r in rows:
        if r["method"] not in best or r["mean PSNR"] > best[r["method"]]["mean PSNR"]:
            best[r["method"]] = r
    rows = [{**r, "best": "**yes**" if best[r["method"]] is r else ""} for r in rows]
    cols = ["method", *dict.fromkeys(k for g in GRIDS.values() for k in g), "PSNR inpaint", "PSNR deblur",
            "mean PSNR", "cover90", "best"]  # fmt: skip
    table = markdown_table(rows, cols)
    md = ["# Diffusion samplers: defaults tuned on validation", "", (__doc__ or "").strip(), "",
          f"Last run time {time.time() - t0:.0f} s (rows of earlier runs are reused).", "", table]  # fmt: skip
    (ROOT / "docs/results/diffusion-tuning.md").write_text("\n".join(md) + "\n")
    print(table)


if __name__ == "__main__":
    main()
