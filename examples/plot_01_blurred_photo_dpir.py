"""
# A blurred photograph, restored with DPIR

A measurement is a file: here a photograph blurred by a Gaussian of 1.5 px with noise 0.02, saved as
a PNG. `ip.data.load_image` reads it as it is (size and channels kept), `measured_problem` pairs it with
the operator that produced it, and DPIR with the shipped learned denoiser restores it. The noise level
is estimated from the picture itself (`noise="auto"`). The photograph was blurred here, by simulation,
so the figure can show the truth: with a real blurred file the last step is all there is.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image

import invprior as ip
from invprior.data.measured import measured_problem

folder = Path(tempfile.mkdtemp())
truth = ip.data.image("camera", 96)
blurred = ip.simulate(ip.operators.Blur.gaussian(truth.shape, 1.5), truth, 0.02, seed=0).y
pixels = (blurred[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
Image.fromarray(pixels).save(folder / "blurry.png")  # an 8-bit grey PNG, as a camera would write

# %%
# Read the file and reconstruct. The noise estimate reads the finest wavelet coefficients of the image.

problem, description = measured_problem(str(folder / "blurry.png"), "deblur", {"blur_sigma": 1.5}, noise="auto")
print(description, "| estimated noise sigma:", round(problem.sigma, 4))
result = ip.solve(problem, method="dpir")
print("chi2 of the estimate:", round(float(result.diagnostics.chi2[0]), 3))
print(f"PSNR: blurred {ip.eval.psnr(problem.y, truth):.2f} dB, DPIR {ip.eval.psnr(result.mean, truth):.2f} dB")

fig, ax = plt.subplots(1, 3, figsize=(9, 3.2))
for a, img, title in zip(ax, (truth, problem.y, result.mean), ("truth", "blurred file", "DPIR"), strict=True):
    a.imshow(img[0, 0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    a.set_title(title)
    a.axis("off")
plt.tight_layout()
plt.show()
