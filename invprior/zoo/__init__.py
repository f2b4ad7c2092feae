"""Shipped, trained weights (safetensors) and their cards: ``list()``, ``info(name)``, ``load(name)``.

Every model here was trained by this package's own code on package-shipped data; its card
(``NAME.json``) records the dataset, architecture, parameter count, the exact command that
reproduces it, training time and measured quality. ``load`` returns a prior object:

- ``diffusion-*`` → ``ip.priors.Diffusion`` (``D(x, sigma)`` on [0, 1] images, sigma range, schedule)
- ``vae-*``, ``gan-*`` → ``ip.priors.LatentGenerator`` (``G(z)``, ``latent_dim``; VAEs also ``encode``)
- ``flow-*`` → ``ip.priors.Flow`` (``forward``, ``inverse``, ``log_prob``)
- ``fm-*`` → ``ip.priors.Diffusion`` through the exact change of variables of the flow's Gaussian
  path (every diffusion sampler runs on it; ``.flow`` is the velocity field)
- ``e2e-*``, ``cfm-*`` → ``ip.priors.ConditionalModel`` (methods ``e2e`` and ``cfm``)
- ``ae-*`` → the ``KLAutoencoder`` of a latent diffusion model; ``ldm-*`` →
  ``ip.priors.LatentDiffusion`` (its autoencoder loaded with it; methods ``psld`` and ``resample``)
- ``denoiser-*`` → ``ip.priors.LearnedDenoiser``; ``classifier-*`` → the feature network of the
  Fréchet distance (``ip.eval.frechet_distance``).
"""

from __future__ import annotations

import builtins
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import InvpriorError
from ..models.checkpoint import build, verify

__all__ = ["build", "info", "list", "load", "load_file", "path", "verify"]

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


def load_file(file: str | Path, name: str | None = None, device=None, dtype=None):
    """Load any weights file written by ``invprior train`` as the prior object of its kind.

    ``device`` and ``dtype`` place the network (default: CPU, float32). Whatever they are, the prior
    takes inputs on any device and in any float dtype and returns results on the input's device and in
    its dtype (inputs are moved and cast to the network for each call).

    Before anything is built: the file's sha256 is checked against its card (``verify``), every
    weight must be finite, and the architecture config must lie in sane ranges and describe exactly
    the tensors in the file (checked on torch's ``meta`` device, which allocates nothing).
    """
    from .._device import check_device, check_dtype, place
    from ..models.checkpoint import load_model
    from ..priors.denoisers import LearnedDenoiser
    from ..priors.diffusion import Diffusion
    from ..priors.generative import Flow, LatentGenerator

    device, dtype = check_device(device), check_dtype(dtype)  # a bad device fails before any loading
    file = Path(file)
    model, meta = load_model(file)
    place(model, device, dtype)
    name = name or file.stem
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    kind = meta.get("kind", "denoiser" if meta.get("architecture") == "DenoiserUNet" else None)
    if kind == "diffusion":
        from ..data.datasets import SIDES

        side = SIDES.get(meta.get("data", ""), 28)  # the training size; natural: fully convolutional
        shape = (int(meta.get("config", {}).get("net", {}).get("channels", 1)), side, side)
        out = Diffusion.from_module(model, sigma_min=0.001, sigma_max=40.0, shape=shape, name=name, info=meta)
        out.any_size = meta.get("data") in ("natural", "natural-colour") and not meta.get("config", {}).get(
            "net", {}
        ).get("attention")
        return out
    if kind in ("e2e", "cfm"):
        from ..priors.conditional import ConditionalModel

        return ConditionalModel(model, kind, (1, 28, 28), name, meta)
    if kind == "fm":
        from ..models.conditional import FlowDenoiser

        out = Diffusion.from_module(FlowDenoiser(model), sigma_min=0.001, sigma_max=40.0, shape=(1, 28, 28),
                                    name=name, info=meta)  # fmt: skip
        out.flow = model  # the velocity field: flow-native solvers and the ODE likelihood
        return out
    if kind == "ae":
        return model
    if kind == "ldm":
        from ..models.tasks import load_autoencoder
        from ..priors.latent_diffusion import LatentDiffusion

        ref = meta.get("autoencoder")
        if not ref:
            raise InvpriorError(f"{file}: a latent diffusion model without the name of its autoencoder")
        if ref.endswith(".safetensors"):  # a user's run: the path it was trained with, or beside this file
            found = [p for p in (Path(ref), file.parent / Path(ref).name) if p.is_file()]
            if not found:
                raise InvpriorError(f"{file} decodes with the autoencoder {ref}, found neither there nor beside it")
            ref = str(found[0])
        elif not (_DIR / f"{ref}.safetensors").exists():
            raise InvpriorError(f"{file} decodes with the autoencoder {ref!r}, which is not in the zoo")
        ae, ae_meta = load_autoencoder(ref)
        place(ae, device, dtype)
        if meta.get("autoencoder_sha256") and ae_meta["sha256"] != meta["autoencoder_sha256"]:
            raise InvpriorError(
                f"{file} was trained on the latents of another {ref} (sha256 {meta['autoencoder_sha256'][:12]}..., "
                f"found {ae_meta['sha256'][:12]}...); retrain it on this autoencoder"
            )
        return LatentDiffusion.from_autoencoder(model, ae, (1, 28, 28), name=name, info=meta)
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


def load(name: str, device=None, dtype=None):
    """Load a shipped model by name as the prior object of its kind (see the module docstring). Sampler
    settings tuned for it on validation data (its card's ``"sampler defaults"``) become the defaults of
    ``ip.solve`` with it; options given to ``solve`` override them.

    ``device``/``dtype`` place the network, e.g. ``zoo.load("diffusion-natural", device="cuda",
    dtype=torch.float16)``; results still follow each input's device and dtype."""
    out = load_file(path(name), name, device=device, dtype=dtype)
    card = info(name)
    extra = {k: card[k] for k in ("sampler defaults", "colour model") if card.get(k)}
    if extra and isinstance(getattr(out, "info", None), dict):
        out.info = {**out.info, **extra}
    if card.get("colour model"):  # Diffusion.at_shape hands colour images to it, loaded where this one is
        out.colour_sibling = functools.partial(load, card["colour model"], device=device, dtype=dtype)
    return out
