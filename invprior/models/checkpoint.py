"""Weights and training state as safetensors (never pickle): save, load, validate, EMA."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import InvpriorError

__all__ = ["EMA", "load_state", "load_weights", "save_state", "save_weights"]


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; shipped files must be readable by all
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write tensors + JSON-able metadata to a safetensors file, atomically."""
    from safetensors.torch import save_file

    t = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {k: json.dumps(v) for k, v in metadata.items()}
    _atomic_write(Path(path), lambda tmp: save_file(t, tmp, metadata=meta))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file; anything else (a pickle, a truncated file) is a clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise InvpriorError(f"no weights file at {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] == b"\x80\x02" or head[:2] == b"\x80\x04" or head[:2] == b"PK":
        raise InvpriorError(f"{path} looks like a pickle/torch.save file; only safetensors weights are loaded")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise InvpriorError(f"{path} is not a valid safetensors file: {e}") from e
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v
    return tensors, meta


def save_state(
    path: str | Path, model: nn.Module, ema: EMA | None, opt: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    """A resumable training checkpoint: weights, EMA weights, Adam moments, step and RNG state."""
    t: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        t.update({f"ema.{k}": v for k, v in ema.model.state_dict().items()})
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        st = opt.state.get(p, {})
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                t[f"opt.{i}.{name}"] = v if v.dim() else v.reshape(1)
    t["rng.torch"] = torch.get_rng_state()
    save_weights(path, t, {**meta, "lr": [g["lr"] for g in opt.param_groups]})


def load_state(path: str | Path, model: nn.Module, ema: EMA | None, opt: torch.optim.Optimizer) -> dict[str, Any]:
    t, meta = load_weights(path)
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    if ema is not None:
        ema.model.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        st = {k.split(".", 2)[2]: v for k, v in t.items() if k.startswith(f"opt.{i}.")}
        if st:
            if "step" in st:
                st["step"] = st["step"].reshape(())
            opt.state[p] = st
    for g, lr in zip(opt.param_groups, meta.get("lr", []), strict=False):
        g["lr"] = lr
    if "rng.torch" in t:
        torch.set_rng_state(t["rng.torch"])
    return meta


class EMA:
    """Exponential moving average of a model's weights (decay ``d``): ``w_ema = d w_ema + (1 - d) w``."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for pe, p in zip(self.model.parameters(), model.parameters(), strict=True):
            pe.lerp_(p.detach(), 1 - self.decay)
        for be, b in zip(self.model.buffers(), model.buffers(), strict=True):
            be.copy_(b)
