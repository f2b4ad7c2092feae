"""Train the noise-level-conditioned denoiser on patches of the train-split natural images.

Validation images (never test images) are scored during training; checkpoints are safetensors
and a run resumes from its last checkpoint. The final EMA weights and the training log are
written where ``export`` points (the zoo).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data import image, image_names
from .checkpoint import EMA, load_state, save_state, save_weights
from .denoiser_net import DenoiserUNet

__all__ = ["DenoiserTrainConfig", "load_training_images", "train_denoiser"]


@dataclass
class DenoiserTrainConfig:
    steps: int = 12000
    batch: int = 48
    patch: int = 48
    lr: float = 1e-3
    sigma_max: float = 0.2
    widths: tuple[int, ...] = (32, 64, 96)
    blocks: int = 2
    ema: float = 0.999
    seed: int = 0
    bf16: bool = True
    val_every: int = 500
    ckpt_every: int = 200


def load_training_images(split: str = "train", scales: tuple[float, ...] = (1.0, 0.5)) -> list[torch.Tensor]:
    """Gray images of a split at their native size and downscaled (more scales of texture)."""
    out = []
    for name in image_names(split):
        x = image(name, size=None)
        if min(x.shape[-2:]) < 64:
            continue
        for s in scales:
            h, w = int(x.shape[-2] * s), int(x.shape[-1] * s)
            out.append(x if s == 1.0 else F.interpolate(x, size=(h, w), mode="area"))
    return out


def _batch(images: list[torch.Tensor], n: int, p: int, g: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, len(images), (n,), generator=g)
    out = torch.empty(n, 1, p, p)
    for k, i in enumerate(idx.tolist()):
        x = images[i]
        h, w = x.shape[-2:]
        r = int(torch.randint(0, h - p + 1, (1,), generator=g))
        c = int(torch.randint(0, w - p + 1, (1,), generator=g))
        patch = x[0, :, r : r + p, c : c + p]
        rot = int(torch.randint(0, 4, (1,), generator=g))
        patch = torch.rot90(patch, rot, dims=(1, 2))
        if bool(torch.randint(0, 2, (1,), generator=g)):
            patch = patch.flip(-1)
        out[k] = patch
    return out


@torch.no_grad()
def validate(model: torch.nn.Module, images: list[torch.Tensor], sigmas=(0.05, 0.1), seed: int = 0) -> dict[str, float]:
    """Mean PSNR of the denoiser on the given images at fixed noise levels (fixed noise seed)."""
    g = torch.Generator().manual_seed(seed)
    res = {}
    for s in sigmas:
        vals = []
        for x in images:
            noisy = x + s * torch.randn(x.shape, generator=g)
            d = model(noisy, torch.full((1,), s)).clamp(0, 1)
            vals.append(10 * math.log10(1.0 / float(((d - x) ** 2).mean())))
        res[f"psnr@{s:g}"] = float(np.mean(vals))
    return res


def train_denoiser(out_dir: str | Path, cfg: DenoiserTrainConfig, export: str | Path | None = None) -> Path:
    """Train (or resume) in ``out_dir``; returns the path of the exported weights."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = DenoiserUNet(1, tuple(cfg.widths), cfg.blocks)
    ema = EMA(model, cfg.ema)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt, log_path = out_dir / "checkpoint.safetensors", out_dir / "log.csv"
    step, elapsed = 0, 0.0
    g = torch.Generator().manual_seed(cfg.seed)
    if ckpt.exists():
        meta = load_state(ckpt, model, ema, opt)
        step, elapsed = int(meta["step"]), float(meta.get("elapsed", 0.0))
        g.manual_seed(cfg.seed + 1_000_003 * step)  # fresh, reproducible patch stream after a resume
        print(f"resumed from step {step} ({elapsed / 60:.1f} min of training so far)")
    train_imgs = load_training_images("train")
    val_imgs = [image(n, 128) for n in image_names("val")]
    n_params = sum(p.numel() for p in model.parameters())
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as f:
        w = csv.writer(f)
        if new_log:
            w.writerow(["step", "loss", "lr", "elapsed_s", "val_psnr@0.05", "val_psnr@0.1"])
        bar = tqdm(total=cfg.steps, initial=step, desc=f"train denoiser ({n_params / 1e6:.2f} M params)")
        running = None
        t_last = time.perf_counter()
        while step < cfg.steps:
            lr = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
            for gr in opt.param_groups:
                gr["lr"] = lr
            x = _batch(train_imgs, cfg.batch, cfg.patch, g)
            sigma = cfg.sigma_max * torch.rand(cfg.batch, generator=g)
            noisy = x + sigma.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=g)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                pred = model(noisy, sigma)
            loss = F.mse_loss(pred.float(), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model)
            step += 1
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
            bar.update()
            bar.set_postfix(loss=f"{running:.2e}", lr=f"{lr:.1e}")
            val = {}
            if step % cfg.val_every == 0 or step == cfg.steps:
                val = validate(ema.model, val_imgs)
                bar.write(f"step {step}: val PSNR {val}")
            if step % 50 == 0 or val:
                w.writerow([step, f"{running:.6g}", f"{lr:.3g}", f"{elapsed:.1f}",
                            f"{val.get('psnr@0.05', ''):}", f"{val.get('psnr@0.1', ''):}"])  # fmt: skip
                f.flush()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_state(ckpt, model, ema, opt, {"step": step, "elapsed": elapsed, "config": asdict(cfg)})
        bar.close()
    final_val = validate(ema.model, val_imgs)
    export = Path(export) if export is not None else out_dir / "denoiser.safetensors"
    save_weights(
        export,
        ema.model.state_dict(),
        {"architecture": "DenoiserUNet", "config": ema.model.config, "train": asdict(cfg), "steps": step,
         "train_seconds": round(elapsed, 1), "val": final_val, "params": n_params},
    )  # fmt: skip
    (out_dir / "final.json").write_text(json.dumps({"val": final_val, "steps": step, "seconds": elapsed}, indent=2))
    return export
