"""CSGM through a diffusion sampler against DPS and ΠGDM at equal network evaluations, and its
memory against the number of sampler steps K (``invprior bench csgm``).

Budget: network evaluations per chain, a forward and a backward pass each counted once. DPS and
ΠGDM backpropagate through the denoiser at every step (2 evaluations per step), so a budget of
``N`` runs them with ``N / 2`` steps; ``csgm_diffusion`` with a K-step DDIM sampler costs ``2 K`` per
optimiser iteration without checkpointing (``3 K`` with it), so it gets ``N / (2 K)`` iterations.
Chains: ``n_samples`` posterior draws for the samplers, as many restarts for csgm_diffusion.

Memory: the peak resident memory added by one forward + backward pass of the csgm_diffusion
objective on a batch of shapes images, in a fresh process per setting (``ru_maxrss`` after the
pass minus after a warm-up network call), with and without gradient checkpointing.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import torch

from ..data import dataset
from ..operators import simulate
from ..solvers import solve
from .bench_diffusion import make_operator
from .metrics import psnr, ssim

__all__ = ["compare", "peak_memory"]

_MEMORY_SCRIPT = """
import json, resource, sys, torch
import invprior as ip
from invprior.solvers.map.csgm_diffusion import deterministic_sample
torch.set_num_threads(1)
K, ck, batch = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
prior = ip.zoo.load("diffusion-shapes")
z = torch.randn(batch, 1, 28, 28, requires_grad=True)
with torch.no_grad():
    prior.denoise(z, 1.0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = deterministic_sample(prior, z, K, "euler", checkpointed=ck)
x.square().sum().backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"MB": (peak - base) / 1024}))
"""


def peak_memory(steps: list[int], batch: int = 16) -> list[dict]:
    """Peak memory added by one objective pass (forward + backward) against K, with and without
    gradient checkpointing (a fresh process per setting)."""
    rows = []
    for K in steps:
        row = {"K": K, "batch": batch}
        for ck in (False, True):
            out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(K), str(int(ck)), str(batch)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            row["MB checkpointed" if ck else "MB stored"] = round(
                json.loads(out.stdout.strip().splitlines()[-1])["MB"], 1
            )
        rows.append(row)
        print(row)
    return rows


def _settings(method: str, budget: int, K: int) -> dict:
    if method in ("dps", "pigdm"):
        return {"steps": max(1, budget // 2)}
    return {"steps": K, "iters": max(1, budget // (2 * K)), "checkpointed": False}


def compare(datasets=("shapes", "digits"), tasks=("inpaint", "box", "sr4", "mri4"), budgets=(400, 1600),
            n_images: int = 4, chains: int = 4, K: int = 10, sigma_y: float = 0.05,
            seed: int = 0) -> list[dict]:  # fmt: skip
    """Rows (dataset, task, budget, method): PSNR/SSIM of the point estimate (the best restart for
    csgm_diffusion, the posterior mean for the samplers), chi2, the network evaluations per chain
    actually used and the wall time."""
    from .. import zoo

    rows = []
    for data in datasets:
        prior = zoo.load(f"diffusion-{data}")
        x = dataset(data, "test")[:n_images].double()
        for task in tasks:
            problem = simulate(make_operator(task, tuple(x.shape)), x, sigma_y, seed=seed)
            for budget in budgets:
                for method in ("csgm_diffusion", "dps", "pigdm"):
                    opts = _settings(method, budget, K)
                    chain = {"restarts": chains} if method == "csgm_diffusion" else {"n_samples": chains}
                    t0 = time.perf_counter()
                    r = solve(problem, prior, method=method, seed=seed, **chain, **opts)
                    dt = time.perf_counter() - t0
                    nfe = r.diagnostics.nfe * (1 if method == "csgm_diffusion" else 2)  # samplers: + backward
                    est = r.mean.clamp(0, 1)
                    ok = bool(torch.isfinite(est).all())
                    row = {"data": data, "task": task, "budget": budget, "method": method,
                           "settings": ", ".join(f"{k}={v}" for k, v in opts.items() if k != "checkpointed"),
                           "PSNR": psnr(est, x) if ok else math.nan, "SSIM": ssim(est, x) if ok else math.nan,
                           "chi2": float(sum(r.diagnostics.chi2) / len(r.diagnostics.chi2)), "NFE/chain": nfe,
                           "time s": dt}  # fmt: skip
                    rows.append(row)
                    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    return rows
