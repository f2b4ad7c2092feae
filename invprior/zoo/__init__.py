"""Shipped, trained weights (safetensors) and their cards: ``list()``, ``info(name)``, ``load(name)``.

Every model here was trained by this package's own code on package-shipped data; its card
(``NAME.json``) records the dataset, architecture, parameter count, the exact command that
reproduces it, training time and measured quality. ``load`` returns a prior object:

- ``diffusion-*`` → ``ip.priors.Diffusion`` (``D(x, sigma)`` on [0, 1] images, sigma range, schedule)
- ``vae-*``, ``gan-*`` → ``ip.priors.LatentGenerator`` (``G(z)``, ``latent_dim``; VAEs also ``encode``)
- ``flow-*`` → ``ip.priors.Flow`` (``forward``, ``inverse``, ``log_prob``)
- ``denoiser-*`` → ``ip.priors.LearnedDenoiser``; ``classifier-*`` → the feature network of the
  Fréchet distance (``ip.eval.frechet_distance``).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import math
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import InvpriorError

__all__ = ["build", "info", "list", "load", "load_file", "path", "verify"]

_DIR = Path(str(resources.files("invprior.zoo")))
_log = logging.getLogger("invprior")

# sane ranges of the architecture options a weights file's metadata may ask for (checked before
# anything is built): name -> (low, high), inclusive
_CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "channels": (1, 64), "widths": (1, 2048), "blocks": (0, 16), "emb": (1, 4096), "latent": (1, 4096),
    "width": (1, 2048), "hidden": (1, 8192), "couplings": (1, 128), "features": (1, 8192), "dropout": (0, 0.99),
    "sigma_data": (1e-6, 1e3), "sigma_cond_max": (1e-6, 1e6), "alpha": (0, 10), "n_classes": (1, 100_000),
}  # fmt: skip


def _names() -> builtins.list[str]:
    return sorted(p.stem for p in _DIR.glob("*.safetensors"))


def path(name: str) -> Path:
    """The weights file of a shipped model (a clear error listing the names if unknown)."""
    p = _DIR / f"{name}.safetensors"
    if not p.is_file():
        raise InvpriorError(f"no shipped model named {name!r}; shipped: {', '.join(_names()) or 'none'}")
    return p


def info(name: str) -> dict[str, Any]:
    """The model's card (from ``NAME.json``; the weights' own metadata if no card was written)."""
    card = _DIR / f"{name}.json"
    if card.is_file():
        return json.loads(card.read_text())
    from ..models.checkpoint import load_weights

    _, meta = load_weights(path(name))
    return {"name": name, **meta}


def list() -> builtins.list[dict[str, Any]]:
    """One row per shipped model: name, kind, dataset, parameters, size, and its headline quality."""
    rows = []
    for n in _names():
        c = info(n)
        rows.append({
            "name": n, "kind": c.get("kind", "?"), "dataset": c.get("data", c.get("dataset", "?")),
            "parameters": c.get("parameters", c.get("params")), "size MB": round(path(n).stat().st_size / 1e6, 2),
            "quality": c.get("headline", ""),
        })  # fmt: skip
    return rows


def build(meta: dict[str, Any]):
    """The untrained network a weights file's metadata describes (architecture + config)."""
    from ..models import generative as G
    from ..models.denoiser_net import DenoiserUNet
    from ..models.unet import DiffusionUNet, EDMDenoiser

    arch, cfg = meta.get("architecture"), meta.get("config", {})
    if arch == "EDMDenoiser(DiffusionUNet)":
        n = cfg["net"]
        net = DiffusionUNet(n["channels"], tuple(n["widths"]), n["blocks"], n["emb"], n["attention"], n["dropout"])
        return EDMDenoiser(net, cfg["sigma_data"], cfg.get("sigma_cond_max", 20.0))
    if arch == "DenoiserUNet":
        return DenoiserUNet(cfg["channels"], tuple(cfg["widths"]), cfg["blocks"])
    simple = {"ConvVAE": G.ConvVAE, "DCGANGenerator": G.DCGANGenerator, "RealNVP": G.RealNVP,
              "Classifier": G.Classifier}  # fmt: skip
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


def load_file(file: str | Path, name: str | None = None):
    """Load any weights file written by ``invprior train`` as the prior object of its kind.

    Before anything is built: the file's sha256 is checked against its card (``verify``), every
    weight must be finite, and the architecture config must lie in sane ranges and describe exactly
    the tensors in the file (checked on torch's ``meta`` device, which allocates nothing).
    """
    import torch

    from ..models.checkpoint import load_weights
    from ..priors.denoisers import LearnedDenoiser
    from ..priors.diffusion import Diffusion
    from ..priors.generative import Flow, LatentGenerator

    file = Path(file)
    verify(file)
    tensors, meta = load_weights(file)
    name = name or file.stem
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
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    kind = meta.get("kind", "denoiser" if meta.get("architecture") == "DenoiserUNet" else None)
    if kind == "diffusion":
        from ..data.datasets import NATURAL_CROP

        side = NATURAL_CROP if meta.get("data") == "natural" else 28  # the training size; natural: fully convolutional
        shape = (int(meta.get("config", {}).get("net", {}).get("channels", 1)), side, side)
        return Diffusion.from_module(model, sigma_min=0.001, sigma_max=40.0, shape=shape, name=name, info=meta)
    if kind == "vae":
        std = model.decoder_log_std().detach().exp()[0]
        enc = lambda x: model.encode(x)[0]  # noqa: E731 - the posterior mean of q(z|x)
        out = LatentGenerator(model.decode, model.latent, (1, 28, 28), "vae", enc, std, name=name, info=meta)
        out.module = model  # the whole VAE (ELBO terms for bench zoo)
        return out
    if kind == "gan":
        return LatentGenerator(model, model.latent, (1, 28, 28), kind="gan", name=name, info=meta)
    if kind == "flow":
        return Flow(model, (1, 28, 28), name=name, info=meta)
    if kind == "denoiser":
        return LearnedDenoiser(model, name, meta)
    if kind == "classifier":
        return model
    raise InvpriorError(f"{file}: unknown model kind {kind!r}")


def load(name: str):
    """Load a shipped model by name as the prior object of its kind (see the module docstring)."""
    return load_file(path(name), name)
