"""At a fixed particle budget, does an SMC row at 1024 particles lose to 128 because it has only two
runs? The bench's d = 8, d_y = 1 replicates 0-5 at 100 steps, with 2 or 16 runs of N particles.

    OMP_NUM_THREADS=1 python scripts/gmm_smc_runs.py
"""

import torch

from invprior.eval import bench_gmm as bg
from invprior.eval.metrics import sliced_wasserstein
from invprior.priors import Diffusion
from invprior.solvers import solve

res = {}
for r in range(6):
    prior, problem, post = bg._replicate(8, 1, r)
    exact = solve(problem, prior, method="exact", n_samples=2000, seed=1).samples[:, 0]
    D = Diffusion.from_denoiser(prior, 0.005, 4 * float(prior.means.norm(dim=1).max()) + 10)
    for m in ("mcgdiff", "tds"):
        for N, R in ((128, 16), (1024, 2), (1024, 16)):
            out = solve(problem, D, method=m, n_samples=R, n_particles=N, steps=100, seed=0, return_particles=True)
            w = torch.tensor(out.diagnostics.extra["weights"], dtype=torch.float64)[:, 0]
            idx = torch.multinomial(w / w.sum(), 2000, replacement=True, generator=torch.Generator().manual_seed(11))
            res.setdefault((m, N, R), []).append(sliced_wasserstein(out.samples[idx, 0], exact, seed=7))
for k, v in res.items():
    print(k, sum(v) / len(v))
