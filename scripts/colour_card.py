"""Colour: the grey natural prior run channel by channel against an RGB prior trained on colour crops.

    python scripts/colour_card.py [WEIGHTS] # WEIGHTS: the RGB model (default: the zoo's diffusion-natural-colour)
                                            # updates the cards, writes docs/results/natural-colour.md and
                                            # docs/results/zoo/diffusion-natural-colour-samples.png

Test crops: the ``natural-colour`` test split (64², astronaut and grace_hopper in colour; grey test
photographs are skipped: only crops whose channels differ, mean |max - min| over channels > 0.05).
1. Denoising PSNR at sigma 0.05 / 0.1 / 0.2 / 0.5 (64 crops, fixed seed) of ``D(x, sigma)``.
2. Posterior sampling: 70% random inpainting and SR x2 (noise 0.02), ΠGDM with 30 steps, 2 samples, on
   8 crops: PSNR of the mean.
The better model on both is the one ``diffusion-natural`` colour runs should use; the cards say which.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

import invprior as ip
from invprior._io import save_png
from invprior.eval.bench_zoo import _grid
from invprior.eval.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.time()
    weights = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "invprior/zoo/diffusion-natural-colour.safetensors"
    rgb = ip.zoo.load_file(weights, "diffusion-natural-colour")
    grey = ip.zoo.load("diffusion-natural")
    rgb.info = {**rgb.info, "sampler defaults": grey.info["sampler defaults"]}  # the same tuned ΠGDM settings
    grey = grey.at_shape((3, 64, 64), per_channel=True)
    models = {"grey model, per channel": grey, "RGB model": rgb}
    x = ip.data.dataset("natural-colour", "test")
    colourful = (x.max(1).values - x.min(1).values).mean((1, 2)) > 0.05
    x = x[colourful][:64]
    print(f"{len(x)} colourful test crops", flush=True)
    rows = []
    g = torch.Generator().manual_seed(0)
    for sigma in (0.05, 0.1, 0.2, 0.5):
        noisy = x + sigma * torch.randn(x.shape, generator=g)
        row = {"task": f"denoising, sigma {sigma:g} (64 crops)"}
        for name, m in models.items():
            with torch.no_grad():
                row[name] = ip.eval.psnr(m.denoise(noisy, sigma).clamp(0, 1), x)
        rows.append(row)
        print(row, flush=True)
    few = x[:8]
    tasks = {
        "70% random inpainting": lambda s: ip.operators.Inpainting.random(s, missing=0.7, seed=0),
        "SR x2": lambda s: ip.operators.SuperResolution(s, 2),
    }
    for task, make in tasks.items():
        row = {"task": f"{task}, noise 0.02, ΠGDM 30 steps (8 crops)"}
        for name, m in models.items():
            ps = []
            for i in range(len(few)):
                xi = few[i : i + 1]
                p = ip.simulate(make(xi.shape), xi, 0.02, seed=i)
                r = ip.solve(p, m, method="pigdm", steps=30, n_samples=2, seed=i)
                ps.append(ip.eval.psnr(r.mean.clamp(0, 1), xi))
            row[name] = sum(ps) / len(ps)
        rows.append(row)
        print(row, flush=True)
    wins = sum(r["RGB model"] > r["grey model, per channel"] for r in rows)
    verdict = (
        f"the RGB model is better on {wins} of {len(rows)} rows"
        if wins
        else "the grey model run per channel is better on every row"
    )
    samples = rgb.sample(16, seed=0)
    grid = ROOT / "docs/results/zoo/diffusion-natural-colour-samples.png"
    save_png(_grid(samples.clamp(0, 1), rows=4), grid)
    secs = time.time() - t0
    shown = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    md = [
        "# Colour: per-channel grey prior against an RGB prior",
        "",
        f"Command: `python scripts/colour_card.py {shown}` ({secs:.0f} s, one thread). Test crops of the "
        "natural-colour test split whose channels differ; denoising PSNR of `D(x, sigma)`, and the PSNR of "
        "the ΠGDM posterior mean on two tasks. Both models: the same UNet (2.4 M parameters), 10,000 steps, "
        "batch 16; the grey one on grey crops of the train photographs, the RGB one on colour crops of them.",
        "",
        markdown_table(rows),
        "",
        f"Verdict: {verdict}. RGB model samples: [grid](zoo/diffusion-natural-colour-samples.png).",
        "",
    ]
    (ROOT / "docs/results/natural-colour.md").write_text("\n".join(md))
    grey_path, rgb_path = (
        ROOT / "invprior/zoo/diffusion-natural.json",
        ROOT / "invprior/zoo/diffusion-natural-colour.json",
    )
    card = json.loads(grey_path.read_text())
    q = card["quality (test crops, scripts/natural_card.py)"]
    if wins == len(rows):
        card["colour model"] = "diffusion-natural-colour"  # Diffusion.at_shape hands colour images to it
        q["colour"] = (
            "colour images run on the RGB model diffusion-natural-colour (Diffusion.at_shape; per_channel=True "
            f"keeps this grey model channel by channel): on colourful test crops {verdict} "
            "(docs/results/natural-colour.md)"
        )
    else:
        card.pop("colour model", None)
        q["colour"] = f"colour images run channel by channel: on colourful test crops {verdict}"
    grey_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    if rgb_path.exists():  # the shipped RGB model's card: its quality here, the grey model's tuned settings
        rc = json.loads(rgb_path.read_text())
        rc["sampler defaults"] = grey.info["sampler defaults"]
        rc["sampler defaults note"] = (
            "the ΠGDM/DPS/DiffPIR settings tuned for diffusion-natural on a grey validation photograph "
            "(scripts/tune_natural.py), not retuned for this model"
        )
        rc["quality (colourful test crops, scripts/colour_card.py)"] = {
            "rows": rows, "verdict": verdict, "sample grid": "docs/results/zoo/diffusion-natural-colour-samples.png"
        }  # fmt: skip
        rgb_path.write_text(json.dumps(rc, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
