"""Tune the classical defaults on the validation images (never the test images).

    python scripts/tune_classical.py [--ray [ADDRESS]]   # writes invprior/eval/classical_defaults.json
                                                         # and docs/results/classical-tuning.md

1. Denoiser strengths (TV, wavelet, NLM): mean PSNR over the validation images at noise 0.05 and 0.1.
2. TV and wavelet-L1 weights for each named case, solved with FISTA (200 iterations), 128x128.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import invprior as ip
from invprior.eval.cases import make_case
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128
DENOISERS = {
    "tv": (lambda s: ip.priors.TVDenoiser(strength=s), [0.2, 0.35, 0.5, 0.7, 1.0, 1.4]),
    "wavelet": (lambda k: ip.priors.WaveletDenoiser(k=k), [0.75, 1.0, 1.5, 2.0, 2.5, 3.0]),
    "nlm": (lambda h: ip.priors.NLMDenoiser(h_factor=h), [0.4, 0.6, 0.8, 1.0, 1.2]),
}
CASES = ["deblur", "inpaint", "sr", "mri", "ct", "cs"]
REGS = {"tv": (ip.priors.TV, np.logspace(0, 3, 7)), "wavelet": (ip.priors.WaveletL1, np.logspace(-0.5, 2.5, 7))}


def weight_score(case: str, rname: str, w: float) -> float:
    """Mean validation PSNR of FISTA (200 iterations) with weight ``w`` on the first two validation images.
    The grid is absolute (``w / sigma`` of the noise-relative weight): the table keeps those units."""
    cls = REGS[rname][0]
    scores = []
    for name in ip.data.image_names("val")[:2]:
        x = ip.data.image(name, SIZE)
        A, sigma, _ = make_case(case, x.shape)
        p = ip.simulate(A, x, sigma, seed=0)
        scores.append(ip.eval.psnr(ip.solve(p, cls(w * sigma), method="fista", steps=200).mean, x))
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    t0 = time.time()
    names = ip.data.image_names("val")
    images = [ip.data.image(n, SIZE) for n in names]
    out: dict = {"images": names, "size": SIZE, "denoisers": {}, "weights": {}}
    rows_d, rows_w = [], []
    g = torch.Generator().manual_seed(0)
    noisy = {s: [x + s * torch.randn(x.shape, generator=g) for x in images] for s in (0.05, 0.1)}
    for name, (make, grid) in tqdm(DENOISERS.items(), desc="denoisers"):
        scores = []
        for v in grid:
            D = make(v)
            scores.append(
                np.mean([ip.eval.psnr(D(n, s), x) for s in noisy for n, x in zip(noisy[s], images, strict=True)])
            )
        best = int(np.argmax(scores))
        out["denoisers"][name] = float(grid[best])
        rows_d.append(
            {
                "denoiser": name,
                "parameter": float(grid[best]),
                "val PSNR (0.05 & 0.1)": scores[best],
                "grid edge": best in (0, len(grid) - 1),
            }
        )
    # two validation images keep the weight sweep short (FISTA solves); one grid point per (case, prior, w):
    # a Ray Tune trial with --ray
    points = [(case, rname, float(w)) for case in CASES for rname, (_, grid) in REGS.items() for w in grid]
    values = dict(zip(points, grid_map(weight_score, points, args.ray, desc="classical weights"), strict=True))
    for case in CASES:
        _, _, desc = make_case(case, images[0].shape)
        out["weights"][case] = {}
        for rname, (_, grid) in REGS.items():
            scores = [values[(case, rname, float(w))] for w in grid]
            best = int(np.argmax(scores))
            out["weights"][case][rname] = float(grid[best])
            rows_w.append(
                {
                    "case": case,
                    "setup": desc,
                    "prior": rname,
                    "weight": float(grid[best]),
                    "val PSNR": scores[best],
                    "grid edge": best in (0, len(grid) - 1),
                }
            )
    (ROOT / "invprior/eval/classical_defaults.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [
        "# Classical defaults tuned on the validation images",
        "",
        f"Command: `python scripts/tune_classical.py{' --ray' if args.ray else ''}` ({time.time() - t0:.0f} s on "
        "this machine). Denoisers: all validation images ({}) at {}x{}, noise 0.05 and 0.1.".format(
            ", ".join(names), SIZE, SIZE
        ),
        f"Weights: FISTA, 200 iterations, on {', '.join(names[:2])}. `grid edge`: best value at an end of the grid.",
        "",
        markdown_table(rows_d),
        "",
        markdown_table(rows_w),
    ]
    (ROOT / "docs/results/classical-tuning.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
