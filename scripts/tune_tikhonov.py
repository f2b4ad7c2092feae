"""Tune the Tikhonov weight of every named case on the validation images (never the test images).

    python scripts/tune_tikhonov.py            # writes invprior/eval/tikhonov_defaults.json
                                               # and docs/results/tikhonov-tuning.md

For each case and each kind (identity prior centred at 0.5, gradient smoothness prior) the weight
is picked from a log grid by the mean PSNR over the validation images at 128x128, with the case's
default noise level and a fixed seed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import invprior as ip
from invprior.eval.cases import make_case
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CASES = ["denoise", "deblur", "motion", "inpaint", "box", "sr", "mri", "ct", "cs"]
KINDS = {"identity": dict(kind="identity", center=0.5), "gradient": dict(kind="gradient")}
GRID = np.logspace(-1, 5, 13)
SIZE = 128


def main() -> None:
    t0 = time.time()
    images = [ip.data.image(n, SIZE) for n in ip.data.image_names("val")]
    weights: dict[str, dict[str, float]] = {}
    rows = []
    for case in tqdm(CASES, desc="cases"):
        A, sigma, desc = make_case(case, images[0].shape)
        problems = [ip.simulate(A, x, sigma, seed=0) for x in images]
        weights[case] = {}
        for kind, kw in KINDS.items():
            # CT is solved by CG (~25 ms per iteration here): a coarser grid and at most 300 iterations
            grid, max_iter = (GRID, 1000) if case != "ct" else (GRID[::2], 300)
            scores = []
            for w in grid:
                prior = ip.priors.Tikhonov(float(w), **kw)
                psnrs = [
                    ip.eval.psnr(ip.solve(p, prior, method="tikhonov", tol=1e-5, max_iter=max_iter).mean, p.truth)
                    for p in problems
                ]
                scores.append(float(np.mean(psnrs)))
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
        f"Command: `python scripts/tune_tikhonov.py` ({time.time() - t0:.0f} s on this machine).",
        f"Validation images: {', '.join(out['images'])} at {SIZE}x{SIZE}; grid 1e-1 .. 1e5 (13 points; CT: 7 points",
        "and at most 300 CG iterations). `grid edge`: the best weight is at an end of the grid.",
        "",
        markdown_table(rows),
    ]
    (ROOT / "docs/results/tikhonov-tuning.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
