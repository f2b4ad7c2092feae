"""One training loop for every model of the zoo: seeded, resumable, logged, with EMA and bf16.

A ``Task`` owns its modules and optimisers and knows how to take one step on a batch; ``fit``
does the rest: the batch stream of a dataset split, the learning-rate schedule (linear warm-up,
cosine decay to 2 %), a progress bar with loss and ETA, a CSV log, periodic validation and
safetensors checkpoints (weights, EMA, Adam moments, step, elapsed time), and resume from the last
checkpoint of the run folder. The exported file holds the EMA weights (or the plain ones) and a
metadata block from which ``ip.zoo`` rebuilds the model.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from .checkpoint import EMA, load_weights, save_weights

__all__ = ["Task", "TrainConfig", "fit", "load_training_state", "save_training_state"]


@dataclass
class TrainConfig:
    kind: str
    data: str = "shapes"
    steps: int = 6000
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 200
    ema: float = 0.0  # 0: no EMA
    seed: int = 0
    bf16: bool = True
    flip: bool = False  # random horizontal flips (shapes: yes; digits: no)
    val_every: int = 500
    ckpt_every: int = 250
    options: dict[str, Any] = field(default_factory=dict)


class Task:
    """What ``fit`` needs from a model family. Subclasses set ``modules`` and ``optimizers`` and
    implement ``step`` (returns named losses, the first one is shown) and ``validate``."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    ema_module: str | None = None  # name of the module to average
    export_module: str = "model"
    architecture: str = ""
    loss_names: tuple[str, ...] = ("loss",)  # the keys ``step`` returns, in log order
    val_names: tuple[str, ...] = ()  # the keys ``validate`` returns
    with_labels: bool = False  # ``step`` and ``validate`` also get the class labels

    def step(
        self, x: torch.Tensor, g: torch.Generator, bf16: bool, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, model: nn.Module, val: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        return {}

    def export_metadata(self) -> dict[str, Any]:
        return {}


def save_training_state(path: Path, task: Task, ema: EMA | None, meta: dict[str, Any]) -> None:
    t: dict[str, torch.Tensor] = {}
    for name, m in task.modules.items():
        t.update({f"mod.{name}.{k}": v for k, v in m.state_dict().items()})
    if ema is not None:
        t.update({f"ema.{k}": v for k, v in ema.model.state_dict().items()})
    lrs = {}
    for oname, opt in task.optimizers.items():
        params = [p for gr in opt.param_groups for p in gr["params"]]
        for i, p in enumerate(params):
            for sname, v in opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor):
                    t[f"opt.{oname}.{i}.{sname}"] = v if v.dim() else v.reshape(1)
        lrs[oname] = [gr["lr"] for gr in opt.param_groups]
    t["rng.torch"] = torch.get_rng_state()
    save_weights(path, t, {**meta, "lr": lrs})


def load_training_state(path: Path, task: Task, ema: EMA | None) -> dict[str, Any]:
    t, meta = load_weights(path)
    for name, m in task.modules.items():
        p = f"mod.{name}."
        m.load_state_dict({k[len(p) :]: v for k, v in t.items() if k.startswith(p)})
    if ema is not None:
        ema.model.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    for oname, opt in task.optimizers.items():
        params = [p for gr in opt.param_groups for p in gr["params"]]
        for i, p in enumerate(params):
            pre = f"opt.{oname}.{i}."
            st = {k[len(pre) :]: v for k, v in t.items() if k.startswith(pre)}
            if st:
                if "step" in st:
                    st["step"] = st["step"].reshape(())
                opt.state[p] = st
    if "rng.torch" in t:
        torch.set_rng_state(t["rng.torch"])
    return meta


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def fit(task: Task, cfg: TrainConfig, out_dir: str | Path, export: str | Path | None = None) -> Path:
    """Train (or resume) ``task`` in ``out_dir``; write the exported weights and return their path."""
    from ..data import dataset
    from ..data.datasets import dataset_fingerprint

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ema = EMA(task.modules[task.ema_module], cfg.ema) if (cfg.ema > 0 and task.ema_module) else None
    ckpt, log_path = out_dir / "checkpoint.safetensors", out_dir / "log.csv"
    step, elapsed = 0, 0.0
    g = torch.Generator().manual_seed(cfg.seed)
    if ckpt.exists():
        meta = load_training_state(ckpt, task, ema)
        if meta.get("config", {}).get("kind") not in (None, cfg.kind):
            raise RuntimeError(f"{ckpt} is a {meta['config']['kind']} run, not {cfg.kind}; use another --out")
        step, elapsed = int(meta["step"]), float(meta.get("elapsed", 0.0))
        print(f"resumed from step {step} ({elapsed / 60:.1f} min of training so far)")
    train, train_y = dataset(cfg.data, "train", with_labels=True)
    val, val_y = dataset(cfg.data, "val", with_labels=True)
    model_out = task.modules[task.export_module]
    n_params = sum(p.numel() for p in model_out.parameters())
    base_lrs = {k: [gr["lr"] for gr in o.param_groups] for k, o in task.optimizers.items()}  # peak rates
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as f:
        w = csv.writer(f)
        if new_log:
            w.writerow(["step", *task.loss_names, "lr_factor", "elapsed_s", *task.val_names])
        desc = f"train {cfg.kind} on {cfg.data} ({n_params / 1e6:.2f} M params)"
        bar = tqdm(total=cfg.steps, initial=step, desc=desc)
        running: dict[str, float] = {}
        t_last = time.perf_counter()
        while step < cfg.steps:
            g.manual_seed(cfg.seed * 1_000_003 + step)  # batches depend on (seed, step) only: exact resume
            fac = _lr_factor(step, cfg)
            for k, o in task.optimizers.items():
                for gr, lr0 in zip(o.param_groups, base_lrs[k], strict=True):
                    gr["lr"] = lr0 * fac
            idx = torch.randint(0, len(train), (cfg.batch,), generator=g)
            x = train[idx]
            if cfg.flip:
                flip = torch.rand(cfg.batch, generator=g) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            losses = task.step(x, g, cfg.bf16, train_y[idx] if task.with_labels else None)
            if ema is not None:
                ema.update(task.modules[task.ema_module])
            step += 1
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            for k, v in losses.items():
                running[k] = v if k not in running else 0.98 * running[k] + 0.02 * v
            bar.update()
            bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()})
            vals: dict[str, float] = {}
            if step % cfg.val_every == 0 or step == cfg.steps:
                vals = task.validate(ema.model if ema is not None else model_out, val, val_y)
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in vals.items()))
            if step % 50 == 0 or vals:
                losses_now = [f"{running.get(k, float('nan')):.6g}" for k in task.loss_names]
                vals_now = [f"{vals[k]:.6g}" if k in vals else "" for k in task.val_names]
                w.writerow([step, *losses_now, f"{fac:.3g}", f"{elapsed:.1f}", *vals_now])
                f.flush()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_training_state(ckpt, task, ema, {"step": step, "elapsed": elapsed, "config": asdict(cfg)})
        bar.close()
    final_model = ema.model if ema is not None else model_out
    final_val = task.validate(final_model, val, val_y)
    export = Path(export) if export is not None else out_dir / f"{cfg.kind}-{cfg.data}.safetensors"
    save_weights(
        export,
        final_model.state_dict(),
        {"architecture": task.architecture, "kind": cfg.kind, "config": final_model.config, "train": asdict(cfg),
         "data": cfg.data, "data_fingerprint": dataset_fingerprint(cfg.data), "steps": step,
         "train_seconds": round(elapsed, 1), "val": final_val, "params": n_params, **task.export_metadata()},
    )  # fmt: skip
    (out_dir / "final.json").write_text(json.dumps({"val": final_val, "steps": step, "seconds": elapsed}, indent=2))
    return export
