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
import json
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import InvpriorError

__all__ = ["build", "info", "list", "load", "load_file", "path"]

_DIR = Path(str(resources.files("invprior.zoo")))


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


def load_file(file: str | Path, name: str | None = None):
    """Load any weights file written by ``invprior train`` as the prior object of its kind."""
    from ..models.checkpoint import load_weights
    from ..priors.denoisers import LearnedDenoiser
    from ..priors.diffusion import Diffusion
    from ..priors.generative import Flow, LatentGenerator

    tensors, meta = load_weights(file)
    name = name or Path(file).stem
    model = build(meta)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise InvpriorError(f"{file}: the weights do not match the architecture {meta.get('architecture')}: {e}") from e
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    kind = meta.get("kind", "denoiser" if meta.get("architecture") == "DenoiserUNet" else None)
    if kind == "diffusion":
        return Diffusion.from_module(model, sigma_min=0.001, sigma_max=40.0, shape=(1, 28, 28), name=name, info=meta)
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
