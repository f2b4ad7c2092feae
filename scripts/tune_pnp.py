"""Tune the plug-and-play and Langevin defaults on the validation images (never the test images).

    python scripts/tune_pnp.py [--ray [ADDRESS]]   # prints the table and writes docs/results/pnp-tuning.md

Deblurring (Gaussian blur 2 px, noise 0.02) and 70% random inpainting (noise 0.01) on the
validation images at 96x96, with the shipped learned denoiser:
DPIR (steps, sigma_start), PnP-ADMM (sigma_d as a multiple of sigma_y), PnP-HQS (sigma_start),
RED (sigma_d). The winning values are the function defaults in invprior/solvers/map/pnp.py.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.cases import make_case
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SIZE = 96
GRIDS = {
    "dpir": {"steps": [8, 16, 24], "sigma_start": [0.1, 0.2, 0.4]},
    "pnp_admm": {"sigma_d": [1.0, 2.0, 4.0]},  # x sigma_y, floored at 0.01
    "pnp_hqs": {"sigma_start": [0.1, 0.3, 0.6], "steps": [20, 40]},
    "red": {"sigma_d": [0.01, 0.02, 0.05]},
}


def pnp_score(case: str, method: str, opts: dict) -> float:
    """Mean validation PSNR of ``method`` with ``opts`` (one Ray Tune trial with --ray)."""
    den = ip.priors.LearnedDenoiser.pretrained()
    images = [ip.data.image(n, SIZE) for n in ip.data.image_names("val")]
    A, sigma, _ = make_case(case, images[0].shape)
    opts = dict(opts)
    if method == "pnp_admm":
        opts["sigma_d"] = max(opts["sigma_d"] * sigma, 0.01)
    problems = [ip.simulate(A, x, sigma, seed=0) for x in images]
    return float(np.mean([ip.eval.psnr(ip.solve(p, den, method=method, **opts).mean, p.truth) for p in problems]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    points = [
        (case, method, dict(zip(grid, vals, strict=True)))
        for case in ("deblur", "inpaint")
        for method, grid in GRIDS.items()
        for vals in itertools.product(*grid.values())
    ]
    scores = grid_map(pnp_score, points, args.ray, desc="pnp options")
    rows = []
    for case in ("deblur", "inpaint"):
        sigma = make_case(case, (1, SIZE, SIZE))[1]
        for method in GRIDS:
            mine = [(sc, p[2]) for sc, p in zip(scores, points, strict=True) if p[:2] == (case, method)]
            score, opts = max(mine, key=lambda t: t[0])  # the first best, as the old loop kept it
            if method == "pnp_admm":
                opts = {"sigma_d": max(opts["sigma_d"] * sigma, 0.01)}
            rows.append({"case": case, "method": method, "best options": opts, "val PSNR": score})
            print(rows[-1], flush=True)
    md = [
        "# Plug-and-play defaults tuned on the validation images",
        "",
        f"Command: `python scripts/tune_pnp.py{' --ray' if args.ray else ''}` ({time.time() - t0:.0f} s). "
        "Learned denoiser, validation images",
        f"({', '.join(ip.data.image_names('val'))}) at {SIZE}x{SIZE}, noise seed 0.",
        "",
        markdown_table(rows),
    ]
    (ROOT / "docs/results/pnp-tuning.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
