"""Tune the Tikhonov weight of every named case on the validation images (never the test images).

    python scripts/tune_tikhonov.py [--ray [ADDRESS]]   # writes invprior/eval/tikhonov_defaults.json
                                               # and docs/results/tikhonov-tuning.md

For each case and each kind (identity prior centred at 0.5, gradient smoothness prior) the weight
is picked from a log grid by the mean PSNR over the validation images at 128x128, with the case's
default noise level and a fixed seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.cases import make_case
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CASES = ["denoise", "deblur", "motion", "inpaint", "box", "sr", "mri", "ct", "cs"]
KINDS = {"identity": dict(kind="identity", center=0.5), "gradient": dict(kind="gradient")}
GRID = np.logspace(-1, 5, 13)
SIZE = 128


def tikhonov_score(case: str, kind: str, w: float) -> float:
    """Mean validation PSNR of the Tikhonov solve with weight ``w`` (one Ray Tune trial with --ray)."""
    images = [ip.data.image(n, SIZE) for n in ip.data.image_names("val")]
    A, sigma, _ = make_case(case, images[0].shape)
    max_iter = 1000 if case != "ct" else 300
    prior = ip.priors.Tikhonov(w, **KINDS[kind])
    problems = [ip.simulate(A, x, sigma, seed=0) for x in images]
    return float(np.mean([
        ip.eval.psnr(ip.solve(p, prior, method="tikhonov", tol=1e-5, max_iter=max_iter).mean, p.truth)
        for p in problems
    ]))  # fmt: skip


def _grid(case: str) -> np.ndarray:
    # CT is solved by CG (~25 ms per iteration here): a coarser grid and at most 300 iterations
    return GRID if case != "ct" else GRID[::2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    points = [(case, kind, float(w)) for case in CASES for kind in KINDS for w in _grid(case)]
    values = dict(zip(points, grid_map(tikhonov_score, points, args.ray, desc="tikhonov weights"), strict=True))
    weights: dict[str, dict[str, float]] = {}
    rows = []
    for case in CASES:
        _, _, desc = make_case(case, (1, SIZE, SIZE))
        weights[case] = {}
        for kind in KINDS:
            grid = _grid(case)
            scores = [values[(case, kind, float(w))] for w in grid]
            best = int(np.argmax(scores))
            weights[case][kind] = float(grid[best])
            rows.append(
                {
                    "case": case,
                    "setup": desc,
                    "prior": kind,
                    "weight": float(grid[best]),
                    "val PSNR": scores[best],
                    "grid edge": best in (0, len(grid) - 1),
                }
            )
    out = {
        "images": ip.data.image_names("val"),
        "size": SIZE,
        "grid": GRID.tolist(),
        "weights": weights,
        "fallback": {"identity": 10.0, "gradient": 100.0},
    }
    (ROOT / "invprior/eval/tikhonov_defaults.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [
        "# Tikhonov weights tuned on the validation images",
        "",
        f"Command: `python scripts/tune_tikhonov.py{' --ray' if args.ray else ''}` ({time.time() - t0:.0f} s).",
        f"Validation images: {', '.join(out['images'])} at {SIZE}x{SIZE}; grid 1e-1 .. 1e5 (13 points; CT: 7 points",
        "and at most 300 CG iterations). `grid edge`: the best weight is at an end of the grid.",
        "",
        markdown_table(rows),
    ]
    (ROOT / "docs/results/tikhonov-tuning.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
