"""
# Latent MAP: compressed sensing with a VAE prior

With 10% random Gaussian measurements of a 28×28 digit, a sparsity prior has little to work with.
`vae_map` searches the latent space of the shipped VAE (`vae-digits`) for the image whose decoder
output fits the measurements, with the latent prior as the regulariser; TV (weight chosen by the
discrepancy principle) is the classical baseline on the same data.
"""

import matplotlib.pyplot as plt

import invprior as ip

x = ip.data.dataset("digits", "test")[7:8]
A = ip.operators.CompressedSensing(x.shape, 78, seed=0)  # m = 78 of n = 784
problem = ip.simulate(A, x, noise=0.02, seed=0)
vae = ip.solve(problem, ip.zoo.load("vae-digits"), method="vae_map", seed=0)
tv = ip.solve(problem, ip.priors.TV("auto"), method="fista")
for name, r in (("VAE latent MAP", vae), ("TV (auto weight)", tv)):
    print(f"{name}: PSNR {ip.eval.psnr(r.mean, x):.2f} dB, chi2 {float(r.diagnostics.chi2[0]):.2f}")

fig, ax = plt.subplots(1, 3, figsize=(7, 2.6))
for a, img, title in zip(ax, (x, vae.mean, tv.mean), ("truth", "VAE latent MAP", "TV"), strict=True):
    a.imshow(img[0, 0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    a.set_title(title)
    a.axis("off")
plt.tight_layout()
plt.show()
