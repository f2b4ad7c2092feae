"""Tune the generative-prior MAP methods' optimisation on the validation split (never the test split).

    python scripts/tune_generative.py [--ray [ADDRESS]]   # prints the table, writes
                                                          # docs/results/generative-map-tuning.md

The first 4 validation images of shapes, noise 0.05, the operators of ``bench generative-map``
(compressed sensing with m = 25 / 100 / 400, 70% random inpainting), the zoo's shapes priors. Each
row gives every option explicitly (the defaults at the time of the run are the rows marked
"default"); the score is PSNR, and χ² (mean over images) tells a fit that has not converged
(χ² ≫ 1 beyond the representation error) from one limited by the prior. Rows are kept in
docs/results/generative-map-tuning.json and reused (delete a method's rows after changing its code);
the "default" column is read from the current function signatures when the table is written.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.bench_generative import _operator
from invprior.eval.distributed import add_ray_argument, grid_map
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["cs25", "cs100", "cs400", "inpaint"]
ADAM = {"optimizer": "adam", "lam": 1.0}
GRID = [
    ("csgm", "gan-shapes", {"steps": 300, "restarts": 4, "lr": 0.05}),
    ("csgm", "gan-shapes", {"steps": 300, "restarts": 4, "lr": 0.05, "lam": 0.1}),
    ("csgm", "gan-shapes", {"steps": 300, "restarts": 4, "lr": 0.1}),
    ("csgm", "gan-shapes", {"steps": 1000, "restarts": 4, "lr": 0.05}),
    ("csgm", "gan-shapes", {"steps": 300, "restarts": 8, "lr": 0.05}),
    ("csgm", "gan-shapes", {"steps": 1000, "restarts": 8, "lr": 0.05}),
    ("csgm", "gan-shapes", {"steps": 1000, "restarts": 8, "lr": 0.1}),
    ("vae_map", "vae-shapes", {"steps": 300, "restarts": 4, "lr": 0.05}),
    ("vae_map", "vae-shapes", {"steps": 300, "restarts": 4, "lr": 0.05, "lam": 0.1}),
    ("vae_map", "vae-shapes", {"steps": 1000, "restarts": 4, "lr": 0.05}),
    ("vae_map", "vae-shapes", {"steps": 1000, "restarts": 8, "lr": 0.05}),
    ("vae_map", "vae-shapes", {"steps": 1000, "restarts": 4, "lr": 0.05, "decoder_variance": True}),
    ("flow_map_x", "flow-shapes", {"steps": 300, "lr": 0.05}),
    ("flow_map_x", "flow-shapes", {"steps": 300, "lr": 0.02}),
    ("flow_map_x", "flow-shapes", {"steps": 500, "lr": 0.02}),
    ("flow_map_x", "flow-shapes", {"steps": 500, "lr": 0.02, "lam": 0.3}),
    ("flow_map_z", "flow-shapes", {"steps": 300, "lr": 0.05}),
    ("flow_map_z", "flow-shapes", {"steps": 500, "lr": 0.02}),
    ("flow_map_z", "flow-shapes", {"steps": 300, "lr": 0.05, "lam": 0.3}),
]


def _is_default(method: str, opts: dict) -> bool:
    fn = ip.solvers.registry.get(method).fn
    sig = inspect.signature(fn).parameters
    return all(str(sig[k].default) == str(v) for k, v in opts.items() if k in sig)


def generative_row(method: str, name: str, opts: dict) -> dict:
    """The table row of one setting: PSNR and chi2 per task (one Ray Tune trial with --ray)."""
    x = ip.data.dataset("shapes", "val")[:4]
    prior = ip.zoo.load(name)
    row = {"method": method, "options": ", ".join(f"{k}={v}" for k, v in opts.items() if k != "optimizer")}
    t1 = time.time()
    for task in TASKS:
        p = ip.simulate(_operator(task, tuple(x.shape)), x, 0.05, seed=0)
        r = ip.solve(p, prior, method=method, **opts)
        row[f"{task} PSNR"] = ip.eval.psnr(r.mean.clamp(0, 1), x)
        row[f"{task} chi2"] = float(np.mean(r.diagnostics.chi2))
    row["mean PSNR"] = float(np.mean([row[f"{t} PSNR"] for t in TASKS]))
    row["time s"] = time.time() - t1
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ray_argument(ap)
    args = ap.parse_args()
    store = ROOT / "docs/results/generative-map-tuning.json"
    rows = json.loads(store.read_text()) if store.exists() else []
    done = {(r["method"], r["options"]) for r in rows}
    points = [(method, name, {**ADAM, **opts}) for method, name, opts in GRID]
    todo = [
        p for p in points
        if (p[0], ", ".join(f"{k}={v}" for k, v in p[2].items() if k != "optimizer")) not in done
    ]  # fmt: skip
    for row in grid_map(generative_row, todo, args.ray, desc="generative MAP settings"):
        rows.append(row)
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    store.write_text(json.dumps(rows, indent=1))
    for row in rows:
        opts = dict(kv.split("=") for kv in row["options"].split(", "))
        row["default"] = "**yes**" if _is_default(row["method"], opts) else ""
    cols = ["method", "options", *[f"{t} {c}" for t in TASKS for c in ("PSNR", "chi2")], "mean PSNR", "time s",
            "default"]  # fmt: skip
    table = markdown_table(rows, cols)
    md = ["# Generative-prior MAP: optimisation settings tuned on validation", "", (__doc__ or "").strip(), "",
          f"Sum of the rows' run times {sum(r['time s'] for r in rows):.0f} s (they ran while another benchmark "
          "shared the 2 cores).", "", table]  # fmt: skip
    (ROOT / "docs/results/generative-map-tuning.md").write_text("\n".join(md) + "\n")
    print(table)


if __name__ == "__main__":
    main()
