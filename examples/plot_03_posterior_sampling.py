"""
# Posterior sampling and its uncertainty

A box hides the middle of a handwritten digit. A diffusion prior trained on digits (`diffusion-digits`,
shipped) and the DDNM sampler draw several completions that all fit the visible pixels: the posterior
is multimodal, and the pixel-wise standard deviation shows where the data leave the answer open. The
trust layer reports the data fit (chi2 per sample) of every draw.
"""

import matplotlib.pyplot as plt

import invprior as ip

prior = ip.zoo.load("diffusion-digits")
x = ip.data.dataset("digits", "test")[3:4]
A = ip.operators.Inpainting.box(x.shape, 12)
problem = ip.simulate(A, x, noise=0.05, seed=0)
result = ip.solve(problem, prior, method="ddnm", n_samples=6, steps=50, seed=0)
print("chi2 of each sample:", [round(float(c), 2) for c in result.trust.chi2[:, 0]])
inside, outside = result.std[0, 0][~A.mask[0]].mean(), result.std[0, 0][A.mask[0]].mean()
print(f"PSNR of the mean: {ip.eval.psnr(result.mean, x):.2f} dB; mean std inside the box {float(inside):.3f}, "
      f"outside {float(outside):.3f}")  # fmt: skip

# %%
# Truth, measurement, four samples, their mean and their standard deviation.

panels = [(x, "truth"), (A.T(problem.y), "measurement")]
panels += [(result.samples[i : i + 1, 0], f"sample {i + 1}") for i in range(4)]
panels += [(result.mean, "mean"), (result.std, "std")]
fig, ax = plt.subplots(1, len(panels), figsize=(2 * len(panels), 2.3))
for a, (img, title) in zip(ax, panels, strict=True):
    a.imshow(img[0, 0], cmap="magma" if title == "std" else "gray", vmin=0, vmax=None if title == "std" else 1)
    a.set_title(title, fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()
