"""The loosest stopping tolerance of each iterative MAP solver that changes PSNR by < 0.01 dB against
the converged solution, on the validation images (never the test ones).

    python scripts/tune_stopping.py [--ray [ADDRESS]]   # writes docs/results/stopping-tuning.md

Problems: two validation photographs (moon, clock) at 128², deblurring (σ = 2 px, noise 0.02), 70%
random inpainting and MRI ×4, each with its validation-tuned TV weight. Solvers: FISTA at its defaults
(adaptive restart; TV prox solved to a relative duality gap of 0.1 times the last relative change of the
iterate, between 1e-7 and 1e-4), FISTA as invprior 0.2 ran it (no restart, TV prox to 1e-4), PGD (ISTA,
prox as FISTA's, cap 10000), PDHG, ADMM with its fixed penalty (its default) and with Boyd's adaptive
penalty; TV prox to 1e-4 and, for ADMM and PGD, adaptive as FISTA's. For each solver and tolerance: the
iterations to stop, whether it stopped before the step cap, the TV prox's inner iterations per outer
step (FISTA, PGD), the seconds per solve (one thread; a run beside another job says so) and the largest
abs(PSNR - PSNR_converged) over the problems. "Converged": FISTA with restart, ``tol = 1e-9``, 5000
steps and the TV prox to 1e-9, one reference for every solver (they solve the same problem). The
criterion is each solver's own: the relative change of the iterate ``||x_{k+1} - x_k|| / ||x_k||``
(PDHG: per step, over 10 steps; ADMM: Boyd's relative primal and dual residuals, ``||x - z|| <= tol
max(||x||, ||z||)`` and ``||z - z_old|| <= tol ||u||``).
"""

from __future__ import annotations

import argparse
import json
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
SOLVERS = {  # label -> (method, solver options, TV prox tolerance, step cap, tolerances)
    "fista TV (defaults: restart, adaptive prox)": ("fista", {}, 1e-4, 1000, (1e-5, 5e-6, 3e-6, 1e-6)),
    "fista TV (0.2: no restart, prox 1e-4)": (
        "fista",
        {"restart": False, "adaptive_prox": False},
        1e-4,
        1000,
        (1e-4, 3e-5, 1e-5),
    ),
    "pgd TV (ISTA, adaptive prox)": ("pgd", {}, 1e-4, 10000, (3e-6, 1e-6, 3e-7)),
    "pdhg TV": ("pdhg", {}, 1e-4, 2000, (1e-4, 3e-5, 1e-5, 3e-6)),
    "admm TV (defaults: fixed penalty)": ("admm", {}, 1e-4, 1000, (1e-4, 3e-5, 1e-5, 3e-6)),
    "admm TV (adaptive penalty)": ("admm", {"adaptive": True}, 1e-4, 1000, (1e-4, 3e-5, 1e-5)),
}
REFERENCE = ("fista", {"adaptive_prox": False}, 1e-9, 5000, 1e-9)


def _problems():
    out = []
    for name in IMAGES:
        x = ip.data.image(name, 128).double()
        for case in CASES:
            A, sigma, _ = make_case(case, x.shape)
            out.append((case, x, ip.simulate(A, x, sigma, seed=0)))
    return out


def _code_version() -> str:
    """A hash of the solvers' and the TV prox's source: stored points of other code are recomputed."""
    import hashlib
    import inspect

    from invprior.priors import regularisers
    from invprior.solvers.map import classical

    return hashlib.sha256((inspect.getsource(classical) + inspect.getsource(regularisers)).encode()).hexdigest()[:12]


def stopping_point(label: str | None, tol: float | None, i: int) -> tuple[int, bool, float, float, float]:
    """(iterations, converged, PSNR, seconds, inner iterations per step) of solver ``label`` on problem
    ``i`` at ``tol`` (``label=None``: the converged reference). One Ray Tune trial with --ray."""
    warnings.simplefilter("ignore")
    if label is None:
        method, opts, prox_tol, cap, tol = REFERENCE
    else:
        method, opts, prox_tol, cap, _ = SOLVERS[label]
    case, x, p = _problems()[i]
    prior = ip.priors.TV(regulariser_default(case, "tv"), tol=prox_tol, max_iter=1000 if label is None else 200)
    t0 = time.perf_counter()
    r = ip.solve(p, prior, method=method, tol=tol, steps=cap, **opts)
    secs = time.perf_counter() - t0
    d = r.diagnostics
    inner = d.extra.get("inner_iterations", 0) / max(d.iterations, 1)
    return d.iterations, bool(d.converged), ip.eval.psnr(r.mean, x), secs, inner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    n = len(IMAGES) * len(CASES)
    points = [(None, None, i) for i in range(n)]
    points += [(label, tol, i) for label, spec in SOLVERS.items() for tol in spec[-1] for i in range(n)]
    # a rerun computes only the points whose solver settings changed (or are new)
    cache = ROOT / "docs/results/stopping-tuning.json"
    stored = json.loads(cache.read_text()).get("points", {}) if cache.exists() else {}
    key = {p: repr((p, REFERENCE if p[0] is None else SOLVERS[p[0]][:4], _code_version())) for p in points}
    todo = [p for p in points if key[p] not in stored]
    for p, v in zip(todo, grid_map(stopping_point, todo, args.ray, desc="stopping"), strict=True):
        stored[key[p]] = v
    got = {p: stored[key[p]] for p in points}
    rows = []
    for label, spec in SOLVERS.items():
        for tol in spec[-1]:
            res = [got[(label, tol, i)] for i in range(n)]
            its = [r[0] for r in res]
            dev = max(abs(res[i][2] - got[(None, None, i)][2]) for i in range(n))
            rows.append({"solver": label, "tol": tol, "mean iterations": round(sum(its) / n, 1),
                         "max iterations": max(its), "stopped early": f"{sum(r[1] for r in res)}/{n}",
                         "inner / step": round(sum(r[4] for r in res) / n, 1) if spec[0] in ("fista", "pgd") else "",
                         "s / solve": round(sum(r[3] for r in res) / n, 2),
                         "max abs dPSNR dB": round(dev, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    md = ["# Stopping tolerances of the MAP solvers, tuned on validation images", "",
          f"Command: `python scripts/tune_stopping.py{' --ray' if args.ray else ''}` "
          f"({time.perf_counter() - t0:.0f} s, one thread per solve).",
          "", (__doc__ or "").strip(), "", markdown_table(rows), ""]  # fmt: skip
    for label in SOLVERS:
        ok = [
            r
            for r in rows
            if r["solver"] == label and r["max abs dPSNR dB"] < 0.01 and r["stopped early"] == f"{n}/{n}"
        ]
        best = max(ok, key=lambda r: r["tol"]) if ok else None
        md.append(f"- {label}: " + (f"tol {best['tol']:g} ({best['mean iterations']} iterations on average, "
                                    f"{best['s / solve']} s)" if best
                                    else "no tolerance of the grid is within 0.01 dB before the step cap"))  # fmt: skip
    (ROOT / "docs/results/stopping-tuning.md").write_text("\n".join(md) + "\n")
    kept = {key[p]: stored[key[p]] for p in points}
    cache.write_text(json.dumps({"command": "python scripts/tune_stopping.py", "rows": rows, "points": kept}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
