"""The loosest stopping tolerance of each iterative MAP solver that changes PSNR by < 0.01 dB against
the converged solution, on the validation images (never the test ones).

    python scripts/tune_stopping.py [--ray [ADDRESS]]   # writes docs/results/stopping-tuning.md

Problems: two validation photographs (moon, clock) at 128², deblurring (σ = 2 px, noise 0.02), 70%
random inpainting and MRI ×4, each with its validation-tuned TV weight; FISTA and PDHG. For each
solver and tolerance: the iterations to stop, whether it stopped before the step cap, and the
largest abs(PSNR - PSNR_converged) over the problems; "converged" is the same solver run with
``tol = 1e-8`` and 5× the step cap (itself a long run, not a limit). The criterion is each solver's
own (relative change of the iterate). Only iteration counts are measured here, so the run may share
the CPU.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

import invprior as ip
from invprior.eval.cases import make_case, regulariser_default
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("moon", "clock")
CASES = ("deblur", "inpaint", "mri")
TOLS = (1e-3, 3e-4, 1e-4, 3e-5)
SOLVERS = {  # label -> (method, prior factory, step cap)
    "fista TV": ("fista", lambda c: ip.priors.TV(regulariser_default(c, "tv")), 300),
    "pdhg TV": ("pdhg", lambda c: ip.priors.TV(regulariser_default(c, "tv")), 500),
}


def _problems():
    out = []
    for name in IMAGES:
        x = ip.data.image(name, 128).double()
        for case in CASES:
            A, sigma, _ = make_case(case, x.shape)
            out.append((case, x, ip.simulate(A, x, sigma, seed=0)))
    return out


def stopping_point(label: str, tol: float | None, i: int) -> tuple[int, bool, float]:
    """(iterations, converged, PSNR) of solver ``label`` on problem ``i`` at ``tol`` (``None``: the
    converged reference, tol 1e-8 and 5x the step cap). One Ray Tune trial with --ray."""
    warnings.simplefilter("ignore")
    method, make, cap = SOLVERS[label]
    case, x, p = _problems()[i]
    kw = {"tol": 1e-8, "steps": 5 * cap} if tol is None else {"tol": tol, "steps": cap}
    r = ip.solve(p, make(case), method=method, **kw)
    return r.diagnostics.iterations, bool(r.diagnostics.converged), ip.eval.psnr(r.mean, x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    n = len(IMAGES) * len(CASES)
    points = [(label, tol, i) for label in SOLVERS for tol in (None, *TOLS) for i in range(n)]
    got = dict(zip(points, grid_map(stopping_point, points, args.ray, desc="stopping"), strict=True))
    rows = []
    for label in SOLVERS:
        for tol in TOLS:
            its = [got[(label, tol, i)][0] for i in range(n)]
            stopped = sum(got[(label, tol, i)][1] for i in range(n))
            dev = max(abs(got[(label, tol, i)][2] - got[(label, None, i)][2]) for i in range(n))
            rows.append({"solver": label, "tol": tol, "mean iterations": round(sum(its) / len(its), 1),
                         "max iterations": max(its), "stopped early": f"{stopped}/{n}",
                         "max abs dPSNR dB": round(dev, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    md = ["# Stopping tolerances of the MAP solvers, tuned on validation images", "",
          f"Command: `python scripts/tune_stopping.py{' --ray' if args.ray else ''}` "
          f"({time.perf_counter() - t0:.0f} s, one thread per solve).",
          "", (__doc__ or "").strip(), "", markdown_table(rows), ""]  # fmt: skip
    for label in SOLVERS:
        ok = [r for r in rows if r["solver"] == label and r["max abs dPSNR dB"] < 0.01]
        best = max(ok, key=lambda r: r["tol"]) if ok else None
        md.append(f"- {label}: " + (f"tol {best['tol']:g} ({best['mean iterations']} iterations on average)" if best
                                    else "no tolerance of the grid is within 0.01 dB at the step cap"))  # fmt: skip
    (ROOT / "docs/results/stopping-tuning.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
