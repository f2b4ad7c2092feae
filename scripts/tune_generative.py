"""Tune the generative-prior MAP methods' optimisation on the validation split (never the test split).

    python scripts/tune_generative.py     # prints the table and writes docs/results/generative-map-tuning.md

The first 4 validation images of shapes, noise 0.05, the operators of ``bench generative-map``
(compressed sensing with m = 25 / 100 / 400, 70% random inpainting), the zoo's shapes priors. Each
row gives every option explicitly (the defaults at the time of the run are the rows marked
"default"); the score is PSNR, and χ² (mean over images) tells a fit that has not converged
(χ² ≫ 1 beyond the representation error) from one limited by the prior. Rows are kept in
docs/results/generative-map-tuning.json and reused (delete a method's rows after changing its code);
the "default" column is read from the current function signatures when the table is written.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import numpy as np

import invprior as ip
from invprior.eval.bench_generative import _operator
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


def main() -> None:
    x = ip.data.dataset("shapes", "val")[:4]
    problems = {t: ip.simulate(_operator(t, tuple(x.shape)), x, 0.05, seed=0) for t in TASKS}
    priors = {}
    store = ROOT / "docs/results/generative-map-tuning.json"
    rows = json.loads(store.read_text()) if store.exists() else []
    done = {(r["method"], r["options"]) for r in rows}
    for method, name, opts in GRID:
        opts = {**ADAM, **opts}
        row = {"method": method, "options": ", ".join(f"{k}={v}" for k, v in opts.items() if k != "optimizer")}
        if (method, row["options"]) in done:
            continue
        prior = priors.setdefault(name, ip.zoo.load(name))
        t1 = time.time()
        for task, p in problems.items():
            r = ip.solve(p, prior, method=method, **opts)
            row[f"{task} PSNR"] = ip.eval.psnr(r.mean.clamp(0, 1), x)
            row[f"{task} chi2"] = float(np.mean(r.diagnostics.chi2))
        row["mean PSNR"] = float(np.mean([row[f"{t} PSNR"] for t in TASKS]))
        row["time s"] = time.time() - t1
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
