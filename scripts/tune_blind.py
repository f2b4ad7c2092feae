"""Tune the blind-deblurring methods' kernel knobs on the validation split (never the test split).

    python scripts/tune_blind.py [--ray [ADDRESS]]   # prints the table and writes docs/results/blind-tuning.md

The problems of ``invprior bench blind`` built on validation data: the first 4 validation images
of shapes and of digits (their zoo diffusion priors, 4 samples, 100 steps) for the samplers, and
the four validation photographs (moon, text, cell, clock) for ``blind_tv``. The score is the mean
PSNR of the estimate; the kernel error is shown beside it. The winners are the function defaults
in invprior/solvers/sample/blind.py and invprior/solvers/map/blind_tv.py.

Rows are kept in docs/results/blind-tuning.json and only missing combinations run, so a grid can be
extended (a winner on the edge of its grid is a reason to) without re-running the rest.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from invprior.eval.bench_blind import bench
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {
    "blind_dps (learned)": {"kernel_zeta": [0.1, 0.3, 1.0, 3.0]},
    "blind_dps (gaussian)": {"kernel_lr": [0.005, 0.01, 0.02, 0.05]},
    "blind_reddiff (gaussian)": {"kernel_lr": [0.005, 0.02, 0.05]},
    "blind_reddiff (learned)": {"kernel_lr": [0.001, 0.005, 0.02], "kernel_lam": [0.3, 1.0]},
    "blind_tv": {"continuation": [30.0, 100.0, 300.0, 1000.0], "floor": [10.0, 30.0, 100.0, 300.0, 1000.0]},
}


def blind_row(label: str, opts: dict) -> dict:
    """The table row of one setting on the validation sets (one Ray Tune trial with --ray)."""
    datas = ("natural",) if label == "blind_tv" else ("shapes", "digits")
    res = bench(datas, (label,), 4, 4, 100, None, split="val", options={label: opts}, oracle=False, progress=False)
    return {"method": label, **opts,
            "PSNR": round(sum(r["PSNR"] for r in res) / len(res), 2),
            "kernel error": round(sum(r["kernel error"] for r in res) / len(res), 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cache = ROOT / "docs/results/blind-tuning.json"
    rows = json.loads(cache.read_text()) if cache.exists() else []
    done = {json.dumps({k: v for k, v in r.items() if k not in ("PSNR", "kernel error")}, sort_keys=True) for r in rows}
    todo = []
    for label, grid in GRIDS.items():
        for values in itertools.product(*grid.values()):
            opts = dict(zip(grid, values, strict=True))
            if opts.get("floor", 0) > opts.get("continuation", 1e9):
                continue  # blind_tv needs floor <= continuation
            if json.dumps({"method": label, **opts}, sort_keys=True) not in done:
                todo.append((label, opts))
    for row in grid_map(blind_row, todo, args.ray, desc="blind settings"):
        rows.append(row)
        print(row, flush=True)
    took = time.perf_counter() - t0
    md = ["# Blind deblurring: tuning on the validation split", "", "Command: `python scripts/tune_blind.py` "
          f"(last run {took:.0f} s, one thread).", "", (__doc__ or "").strip(), ""]  # fmt: skip
    for label in GRIDS:
        sub = [{k: v for k, v in r.items() if k != "method"} for r in rows if r["method"] == label]
        best = max(sub, key=lambda r: r["PSNR"])
        md += [f"## {label}", "", markdown_table(sub), "", f"Best: {best}", ""]
    (ROOT / "docs/results/blind-tuning.md").write_text("\n".join(md) + "\n")
    cache.write_text(json.dumps(rows, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
