"""
# The exact oracle: a Gaussian-mixture prior

For a Gaussian-mixture prior and a linear Gaussian measurement the posterior is again a Gaussian
mixture, known in closed form. invprior uses it to check its samplers: the `exact` method draws from it,
and `Diffusion.from_denoiser` turns the mixture's exact denoiser into a diffusion prior, so a sampler's
draws can be compared with the true posterior. Here in 2-D, with one noisy linear measurement
`y = x1 + x2 + n`: the posterior is bimodal along the line the measurement allows.
"""

import matplotlib.pyplot as plt
import torch

import invprior as ip
from invprior.priors import GaussianMixture

means = torch.tensor([[-2.0, 1.5], [1.0, -1.0], [2.5, 2.0]])
prior = GaussianMixture(torch.tensor([0.3, 0.4, 0.3]), means, 0.3)
A = ip.operators.Matrix(torch.tensor([[1.0, 1.0]]))
x = torch.tensor([[1.2, -0.9]], dtype=torch.float64)
problem = ip.simulate(A, x, 0.3, seed=0)

exact = ip.solve(problem, prior, method="exact", n_samples=1000, seed=0)
diffusion = ip.priors.Diffusion.from_denoiser(prior, 0.002, 40.0)
mcg = ip.solve(problem, diffusion, method="mcgdiff", n_samples=1000, steps=50, seed=0)
prior_draws = prior.sample(1000, seed=1, dtype=torch.float64)
swd = ip.eval.sliced_wasserstein(mcg.samples[:, 0], exact.samples[:, 0], seed=0)
print(f"sliced Wasserstein distance, MCGdiff to the exact posterior: {float(swd):.3f}")

fig, ax = plt.subplots(1, 3, figsize=(10, 3.3), sharex=True, sharey=True)
for a, pts, title in zip(
    ax, (prior_draws, exact.samples[:, 0], mcg.samples[:, 0]), ("prior", "exact posterior", "MCGdiff"), strict=True
):
    a.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4)
    a.set_title(title)
    a.set_aspect("equal")
plt.tight_layout()
plt.show()
