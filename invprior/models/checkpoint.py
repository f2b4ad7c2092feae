"""Weights and training state as safetensors (never pickle): save, load, validate, EMA."""

from __future__ import annotations

import builtins
import copy
import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import InvpriorError

__all__ = ["EMA", "build", "load_model", "load_state", "load_weights", "save_state", "save_weights", "verify"]

_log = logging.getLogger("invprior")


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


# sane ranges of the architecture options a weights file's metadata may ask for (checked before
# anything is built): name -> (low, high), inclusive
_CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "channels": (1, 64), "widths": (1, 2048), "blocks": (0, 16), "emb": (1, 4096), "latent": (1, 4096),
    "width": (1, 2048), "hidden": (1, 8192), "couplings": (1, 128), "features": (1, 8192), "dropout": (0, 0.99),
    "sigma_data": (1e-6, 1e3), "sigma_cond_max": (1e-6, 1e6), "alpha": (0, 10), "n_classes": (1, 100_000),
    "cond_channels": (0, 64), "latent_channels": (1, 64),
}  # fmt: skip


def build(meta: dict[str, Any]):
    """The untrained network a weights file's metadata describes (architecture + config)."""
    from . import generative as G
    from .denoiser_net import DenoiserUNet
    from .unet import DiffusionUNet, EDMDenoiser

    arch, cfg = meta.get("architecture"), meta.get("config", {})
    if arch == "EDMDenoiser(DiffusionUNet)":
        n = cfg["net"]
        net = DiffusionUNet(n["channels"], tuple(n["widths"]), n["blocks"], n["emb"], n["attention"], n["dropout"])
        return EDMDenoiser(net, cfg["sigma_data"], cfg.get("sigma_cond_max", 20.0))
    if arch in ("E2EUNet", "FlowUNet"):
        from .conditional import E2EUNet, FlowUNet

        n = cfg["net"]
        net = DiffusionUNet(n["channels"], tuple(n["widths"]), n["blocks"], n["emb"], n["attention"], n["dropout"],
                            n.get("cond_channels", 0))  # fmt: skip
        return E2EUNet(net, cfg["family"]) if arch == "E2EUNet" else FlowUNet(net, cfg.get("family"))
    if arch == "DenoiserUNet":
        return DenoiserUNet(cfg["channels"], tuple(cfg["widths"]), cfg["blocks"])
    simple = {"ConvVAE": G.ConvVAE, "DCGANGenerator": G.DCGANGenerator, "RealNVP": G.RealNVP,
              "Classifier": G.Classifier, "KLAutoencoder": G.KLAutoencoder}  # fmt: skip
    if arch in simple:
        return simple[arch](**cfg)
    raise InvpriorError(f"unknown architecture {arch!r} in the weights' metadata")


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(file: str | Path) -> str | None:
    """Check a weights file against the sha256 of its card (``NAME.json`` beside it).

    Returns the verified hash; a mismatch is an error naming the file and both hashes. A file
    without a card (a user's own training run) is not verified: a one-line notice says so.
    """
    file = Path(file)
    card = file.with_suffix(".json")
    expected = None
    if card.is_file():
        try:
            expected = json.loads(card.read_text()).get("sha256")
        except (OSError, json.JSONDecodeError) as e:
            raise InvpriorError(f"the card {card} of {file.name} is unreadable: {e}") from e
    if expected is None:
        _log.warning("invprior: %s has no card with a sha256; nothing verified these weights", file)
        return None
    actual = _sha256(file)
    if actual != expected:
        raise InvpriorError(
            f"{file} does not match its card {card.name}: sha256 {actual}, the card says {expected}; "
            "the file is damaged or was changed (reinstall invprior, or retrain it)"
        )
    return actual


def _check_config(file: Path, cfg: Any, where: str = "config") -> None:
    """Every number of the architecture config lies in a sane range (before anything is built)."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if k in _CONFIG_RANGES and isinstance(v, (builtins.list, tuple)):
                if not 1 <= len(v) <= 8:
                    raise InvpriorError(f"{file}: {where}.{k} has {len(v)} entries; expected 1 to 8")
                for item in v:
                    _check_value(file, f"{where}.{k}", item, _CONFIG_RANGES[k])
            elif k in _CONFIG_RANGES:
                _check_value(file, f"{where}.{k}", v, _CONFIG_RANGES[k])
            else:
                _check_config(file, v, f"{where}.{k}")
    elif isinstance(cfg, (builtins.list, tuple)):
        for i, v in enumerate(cfg):
            _check_config(file, v, f"{where}[{i}]")
    elif isinstance(cfg, (int, float)) and not isinstance(cfg, bool):
        _check_value(file, where, cfg, (-1e6, 1e6))


def _check_value(file: Path, where: str, v: Any, rng: tuple[float, float]) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not rng[0] <= v <= rng[1]:
        raise InvpriorError(f"{file}: {where} = {v!r} is outside its sane range [{rng[0]:g}, {rng[1]:g}]")


def load_model(file: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a weights file written by ``invprior train``, and its metadata, checked first.

    Before anything is built: the file's sha256 is checked against its card (``verify``), every
    weight must be finite, and the architecture config must lie in sane ranges and describe exactly
    the tensors in the file (checked on torch's ``meta`` device, which allocates nothing).
    """
    file = Path(file)
    verify(file)
    tensors, meta = load_weights(file)
    for k, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InvpriorError(f"{file}: the weight {k!r} holds NaN or Inf values; the file is damaged")
    _check_config(file, meta.get("config", {}))
    with torch.device("meta"):
        skeleton = build(meta)
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != have:
        diff = sorted(set(want.items()) ^ set(have.items()))[:3]
        raise InvpriorError(
            f"{file}: the weights do not match the architecture {meta.get('architecture')} of its metadata "
            f"(first differences: {diff})"
        )
    model = build(meta)
    model.load_state_dict(tensors)
    return model, meta
