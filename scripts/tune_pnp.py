"""Tune the plug-and-play and Langevin defaults on the validation images (never the test images).

    python scripts/tune_pnp.py     # prints the table and writes docs/results/pnp-tuning.md

Deblurring (Gaussian blur 2 px, noise 0.02) and 70% random inpainting (noise 0.01) on the
validation images at 96x96, with the shipped learned denoiser:
DPIR (steps, sigma_start), PnP-ADMM (sigma_d as a multiple of sigma_y), PnP-HQS (sigma_start),
RED (sigma_d). The winning values are the function defaults in invprior/solvers/map/pnp.py.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.cases import make_case
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SIZE = 96
GRIDS = {
    "dpir": {"steps": [8, 16, 24], "sigma_start": [0.1, 0.2, 0.4]},
    "pnp_admm": {"sigma_d": [1.0, 2.0, 4.0]},  # x sigma_y, floored at 0.01
    "pnp_hqs": {"sigma_start": [0.1, 0.3, 0.6], "steps": [20, 40]},
    "red": {"sigma_d": [0.01, 0.02, 0.05]},
}


def main() -> None:
    t0 = time.time()
    den = ip.priors.LearnedDenoiser.pretrained()
    images = [ip.data.image(n, SIZE) for n in ip.data.image_names("val")]
    rows = []
    for case in ("deblur", "inpaint"):
        A, sigma, _ = make_case(case, images[0].shape)
        problems = [ip.simulate(A, x, sigma, seed=0) for x in images]
        for method, grid in GRIDS.items():
            keys = list(grid)
            best = None
            for vals in itertools.product(*(grid[k] for k in keys)):
                opts = dict(zip(keys, vals, strict=True))
                if method == "pnp_admm":
                    opts["sigma_d"] = max(opts["sigma_d"] * sigma, 0.01)
                ps = [ip.eval.psnr(ip.solve(p, den, method=method, **opts).mean, p.truth) for p in problems]
                score = float(np.mean(ps))
                if best is None or score > best[0]:
                    best = (score, opts)
            rows.append({"case": case, "method": method, "best options": best[1], "val PSNR": best[0]})
            print(rows[-1], flush=True)
    md = [
        "# Plug-and-play defaults tuned on the validation images",
        "",
        f"Command: `python scripts/tune_pnp.py` ({time.time() - t0:.0f} s). Learned denoiser, validation images",
        f"({', '.join(ip.data.image_names('val'))}) at {SIZE}x{SIZE}, noise seed 0.",
        "",
        markdown_table(rows),
    ]
    (ROOT / "docs/results/pnp-tuning.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
