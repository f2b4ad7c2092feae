"""Add to the card of the natural-image diffusion prior its denoising PSNR on test crops against the
other natural-image denoisers, and its sample grid (issue: a card says how good its model is).

    python scripts/natural_card.py   # updates invprior/zoo/diffusion-natural.json, writes
                                     # docs/results/zoo/diffusion-natural-samples.png

64 test-split crops (64², never trained on), Gaussian noise at sigma 0.05 / 0.1 / 0.2 / 0.5 (fixed
seed): ``D(x, sigma)`` of ``diffusion-natural`` against the shipped ``denoiser-natural``, BM3D (if the
optional ``bm3d`` extra is installed) and NLM. Samples: 16 at 64² by the Heun sampler (18 steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import invprior as ip
from invprior._io import save_png
from invprior.eval.bench_zoo import _grid

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    torch.set_num_threads(1)
    x = ip.data.dataset("natural", "test")[:64]
    dens = {"diffusion-natural": ip.zoo.load("diffusion-natural"),
            "denoiser-natural": ip.priors.LearnedDenoiser.pretrained(), "NLM": ip.priors.NLMDenoiser()}  # fmt: skip
    try:
        dens["BM3D"] = ip.priors.BM3DDenoiser()
    except ip.InvpriorError as e:
        print(f"BM3D left out: {e}")
    table: dict[str, dict[str, float]] = {}
    g = torch.Generator().manual_seed(0)
    for sigma in (0.05, 0.1, 0.2, 0.5):
        noisy = x + sigma * torch.randn(x.shape, generator=g)
        for name, d in dens.items():
            with torch.no_grad():
                out = d.denoise(noisy, sigma) if hasattr(d, "denoise") else d(noisy, sigma)
            table.setdefault(name, {})[f"psnr@{sigma:g}"] = round(ip.eval.psnr(out.clamp(0, 1), x), 2)
        print(sigma, {k: v[f"psnr@{sigma:g}"] for k, v in table.items()}, flush=True)
    samples = dens["diffusion-natural"].sample(16, seed=0)
    save_png(_grid(samples.clamp(0, 1), rows=4), ROOT / "docs/results/zoo/diffusion-natural-samples.png")
    path = ROOT / "invprior/zoo/diffusion-natural.json"
    card = json.loads(path.read_text())
    card["quality (test crops, scripts/natural_card.py)"] = {
        "denoising PSNR on 64 test crops": table,
        "colour": "grey model; colour images run channel by channel (Diffusion.at_shape): no RGB model was trained",
        "sample grid": "docs/results/zoo/diffusion-natural-samples.png",
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
