"""A probe of blind_dps on shapes (not yet the bench blind of issue 15): kernel error and PSNR against
the non-blind oracle and the wrong (start) kernel, at two noise levels.

python scripts/blind_probe.py
"""

import time
import warnings

import torch

import invprior as ip
from invprior.operators.kernels import gaussian_kernel

warnings.simplefilter("ignore")
torch.set_num_threads(2)
prior = ip.zoo.load("diffusion-shapes")
x = ip.data.dataset("shapes", "test")[:4].double()
k = gaussian_kernel(torch.tensor([[4.0, 1.0], [1.0, 2.0]], dtype=torch.float64), 9)
k0 = gaussian_kernel(torch.eye(2, dtype=torch.float64), 9)
for sigma in (0.05, 0.02):
    p = ip.simulate(ip.operators.Blur(x.shape, k), x, sigma, seed=0)
    for name, opts in [
        ("oracle (true kernel)", {"fixed_kernel": k}),
        ("blind gaussian", {}),
        ("wrong kernel (init)", {"fixed_kernel": k0}),
    ]:
        t = time.perf_counter()
        r = ip.solve(p, prior, method="blind_dps", steps=200, n_samples=4, seed=0, **opts)
        e = r.diagnostics.extra
        kerr = [round(float((e["kernel"][b] - k).norm() / k.norm()), 3) for b in range(4)]
        print(
            sigma,
            name,
            round(ip.eval.psnr(r.mean.clamp(0, 1), x), 2),
            "kernel err",
            kerr,
            "fit chi2",
            [round(c, 2) for c in e["fit_chi2"]],
            round(time.perf_counter() - t, 1),
            "s",
        )
