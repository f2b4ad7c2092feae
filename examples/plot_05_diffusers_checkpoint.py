"""
# Bring a diffusers checkpoint

`Diffusion.from_diffusers(folder)` loads a local `UNet2DModel` with its DDPM/DDIM scheduler config
(a pipeline folder with `unet/` and `scheduler/`) and turns it into an invprior `Diffusion` prior:
every sampler then runs on it. Nothing is downloaded: the folder is on disk. To keep this example
self-contained the checkpoint is a tiny, untrained model written here, so its samples are noise-like;
with your own trained checkpoint the same two lines apply. `device=` and `dtype=` place the network.
"""

import tempfile
from pathlib import Path

import diffusers
import torch

import invprior as ip

folder = Path(tempfile.mkdtemp())
torch.manual_seed(0)
unet = diffusers.UNet2DModel(
    sample_size=16, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
    down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
)  # fmt: skip
unet.save_pretrained(folder / "unet", safe_serialization=True)
diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").save_pretrained(folder / "scheduler")

# %%
# Load it and sample a posterior: the checkpoint's sample size fixes the image size (16×16 here).

prior = ip.priors.Diffusion.from_diffusers(folder, dtype=torch.float32)
print(prior)
x = torch.rand(1, *prior.shape, generator=torch.Generator().manual_seed(0))
problem = ip.simulate(ip.operators.Inpainting.random(x.shape, missing=0.5, seed=0), x, 0.05, seed=0)
result = ip.solve(problem, prior, method="ddnm", n_samples=2, steps=10, seed=0)
print("samples", tuple(result.samples.shape), "| network evaluations", result.diagnostics.nfe)
