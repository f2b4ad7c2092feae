"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_diffusers_checkpoint():
    """``make(folder, prediction)``: writes a small untrained diffusers folder (an 8×8 one-channel
    UNet2DModel, seeded, and a 100-step linear DDPMScheduler) and returns ``(unet, scheduler)``."""
    diffusers = pytest.importorskip("diffusers")
    import torch

    def make(folder, prediction: str = "epsilon"):
        torch.manual_seed(0)
        unet = diffusers.UNet2DModel(
            sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
        ).eval()  # fmt: skip
        sched = diffusers.DDPMScheduler(num_train_timesteps=100, beta_schedule="linear", prediction_type=prediction)
        unet.save_pretrained(folder / "unet", safe_serialization=True)
        sched.save_pretrained(folder / "scheduler")
        return unet, sched

    return make
