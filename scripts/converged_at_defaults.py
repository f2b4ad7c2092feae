"""Do the MAP solvers reach their own stopping criterion at their defaults on the demo and benchmark
problems? (issue: ``diagnostics.converged`` is True at the defaults.)

    python scripts/converged_at_defaults.py   # writes docs/results/stopping-defaults.md

Problems: the classical benchmark's (``invprior bench classical``: camera and coins at 128², deblurring,
70% inpainting, SR x2 and x4, MRI x4, CT, compressed sensing) and the demo's (deblurring and inpainting
of camera, MRI of the mri slice, CT of the Shepp-Logan phantom), each with its validation-tuned
weight, in float32 (as the benchmark and a user run them). Solvers at their defaults: FISTA with TV
and with wavelets, PGD, ADMM and PDHG with TV (where they apply). This is a check, not a tuning: no
setting is chosen here. One thread; the times are taken beside another job when the header says so.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch

import invprior as ip
from invprior._checks import InvpriorError
from invprior.eval.bench_classical import OPERATORS
from invprior.eval.cases import make_case, regulariser_default
from invprior.eval.demo import DEMO_CASES
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SOLVERS = [("fista", "tv"), ("fista", "wavelet"), ("pgd", "tv"), ("admm", "tv"), ("pdhg", "tv")]


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    problems = [(img, case, params) for img in ("camera", "coins") for case, params in OPERATORS]
    problems += [(img, case, {}) for case, img in DEMO_CASES]
    rows = []
    for img, case, params in problems:
        x = ip.data.image(img, 128)  # float32, as the benchmark and a user run it
        A, sigma, desc = make_case(case, x.shape, **params)
        p = ip.simulate(A, x, sigma, seed=0)
        for method, reg in SOLVERS:
            R = (ip.priors.TV if reg == "tv" else ip.priors.WaveletL1)(regulariser_default(case, reg))
            try:
                r = ip.solve(p, R, method=method)
            except InvpriorError:
                continue  # the method does not apply (e.g. pdhg needs a linear operator)
            d = r.diagnostics
            rows.append({"image": img, "problem": desc, "solver": f"{method} {reg}", "iterations": d.iterations,
                         "converged": "yes" if d.converged else "no", "time s": round(d.wall_time, 2),
                         "PSNR": round(ip.eval.psnr(r.mean, x), 2)})  # fmt: skip
            print(rows[-1], flush=True)
    summary = []
    for method, reg in SOLVERS:
        rs = [r for r in rows if r["solver"] == f"{method} {reg}"]
        yes = sum(r["converged"] == "yes" for r in rs)
        summary.append({"solver": f"{method} {reg}", "problems": len(rs), "converged at defaults": f"{yes}/{len(rs)}",
                        "mean iterations": round(sum(r["iterations"] for r in rs) / len(rs), 1),
                        "mean time s": round(sum(r["time s"] for r in rs) / len(rs), 2)})  # fmt: skip
    note = " ".join(sys.argv[1:])
    md = ["# MAP solvers at their defaults: do they reach their stopping criterion?", "",
          f"Command: `python scripts/converged_at_defaults.py` ({time.perf_counter() - t0:.0f} s, one thread"
          f"{', ' + note if note else ''}).", "", (__doc__ or "").strip(), "", markdown_table(summary), "",
          markdown_table(rows), ""]  # fmt: skip
    (ROOT / "docs/results/stopping-defaults.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
