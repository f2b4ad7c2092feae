"""
# MRI from under-sampled k-space

An MRI scanner measures Fourier coefficients. Here a brain slice is sampled at 1/4 of its
phase-encode lines (`MRI.cartesian`, fully sampled centre), the k-space is saved as a complex `.npy`
in FFT layout, and read back as a measurement: the sampled entries are its non-zero ones. Zero-filling
(the adjoint) aliases; total variation removes some of it, with its weight set by the discrepancy
principle (`weight="auto"`: the weight whose estimate fits the data at chi2 = 1).
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import invprior as ip
from invprior.data.measured import measured_problem

x = ip.data.image("mri", 96).double()
A = ip.operators.MRI.cartesian(x.shape, acceleration=4, seed=0)
simulated = ip.simulate(A, x, 0.01, seed=0)
kspace = torch.zeros(96, 96, dtype=torch.complex128)
kspace[A.mask] = simulated.y[0]  # the sampled coefficients in their places, zeros elsewhere
path = Path(tempfile.mkdtemp()) / "kspace.npy"
np.save(path, kspace.numpy())

# %%
# The file alone defines the problem (k-space has no image to estimate the noise from: give it).

problem, description = measured_problem(str(path), "mri", noise=0.01)
print(description)
zero_filled = problem.operator.T(problem.y)
tv = ip.solve(problem, ip.priors.TV("auto"), method="pdhg")
print(f"PSNR: zero-filled {ip.eval.psnr(zero_filled, x):.2f} dB, TV {ip.eval.psnr(tv.mean, x):.2f} dB "
      f"(weight {tv.diagnostics.extra['auto_weight']:.3g}, chi2 {float(tv.diagnostics.chi2[0]):.2f})")  # fmt: skip

fig, ax = plt.subplots(1, 4, figsize=(12, 3.2))
ax[0].imshow(np.fft.fftshift(np.log1p(np.abs(kspace.numpy()))), cmap="magma")
ax[0].set_title("k-space file (log magnitude)")
for a, img, title in zip(ax[1:], (x, zero_filled, tv.mean), ("truth", "zero-filled", "TV"), strict=True):
    a.imshow(img[0, 0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    a.set_title(title)
for a in ax:
    a.axis("off")
plt.tight_layout()
plt.show()
