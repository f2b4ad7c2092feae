"""Training tasks of the zoo (see ``training.fit``): one per model family.

Each task builds its modules from ``TrainConfig.options`` (architecture sizes), takes one
optimisation step on a batch of [0, 1] images, and scores the current (EMA) model on the
validation split with a fixed seed, so the numbers in the log are comparable across steps.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .conditional import FAMILY, TASK_NAMES, E2EUNet, FlowDenoiser, FlowUNet, sample_family
from .generative import Classifier, ConvVAE, DCGANDiscriminator, DCGANGenerator, KLAutoencoder, RealNVP
from .training import Task, TrainConfig
from .unet import DiffusionUNet, EDMDenoiser, edm_loss, edm_loss_net

__all__ = ["KIND_DEFAULTS", "TASKS", "bits_per_dim", "dequantize", "make_task"]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def _adam_step(task: Task, loss: torch.Tensor, clip: float = 1.0) -> dict[str, float]:
    """One clipped step of the task's single Adam optimiser on its ``model``."""
    opt = task.optimizers["adam"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(task.model.parameters(), clip)
    opt.step()
    return {"loss": float(loss.detach())}


@torch.no_grad()
def _denoising_psnrs(D, val: torch.Tensor) -> dict[str, float]:
    """PSNR of ``D(x + s eps, s)`` on 512 validation images at s = 0.1, 0.2, 0.5 (fixed seed)."""
    g = torch.Generator().manual_seed(1234)
    x = val[:512]
    out = {}
    for s in (0.1, 0.2, 0.5):
        noisy = x + s * torch.randn(x.shape, generator=g)
        out[f"psnr@{s:g}"] = _psnr(D(noisy, torch.full((len(x),), s)).clamp(0, 1), x)
    return out


class DiffusionTask(Task):
    """EDM denoising score matching of a ``DiffusionUNet`` (log-normal noise levels, EMA)."""

    architecture = "EDMDenoiser(DiffusionUNet)"
    ema_module = "model"
    val_names = ("psnr@0.1", "psnr@0.2", "psnr@0.5")
    defaults: ClassVar[dict[str, Any]] = {
        "widths": [32, 64, 96],
        "blocks": 1,
        "emb": 128,
        "attention": True,
        "dropout": 0.0,
    }

    def __init__(self, cfg: TrainConfig, sigma_data: float, channels: int = 1):
        o = {**self.defaults, **cfg.options}
        net = DiffusionUNet(channels, tuple(o["widths"]), o["blocks"], o["emb"], o["attention"], o["dropout"])
        self.model = EDMDenoiser(net, sigma_data)
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, x, g, bf16, labels=None):
        return _adam_step(self, edm_loss(self.model, x, g, bf16=bf16))

    def validate(self, model, val, labels=None):
        return _denoising_psnrs(model, val)


def dequantize(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Uniform dequantisation of 8-bit pixels: ``(255 x + u) / 256``, ``u ~ U[0, 1)``."""
    return (torch.round(x * 255) + torch.rand(x.shape, generator=g)) / 256


def bits_per_dim(nll_nats: torch.Tensor, dim: int = 784) -> float:
    """Bits per dimension of 8-bit data from the negative log-density (nats) of dequantised
    pixels on [0, 1]: ``(nll + D ln 256) / (D ln 2)``."""
    return float((nll_nats.mean() + dim * math.log(256)) / (dim * math.log(2)))


class VAETask(Task):
    """ELBO of a ``ConvVAE`` on dequantised pixels (Gaussian decoder with learned per-pixel std)."""

    architecture = "ConvVAE"
    val_names = ("elbo_bpd", "recon_psnr")
    defaults: ClassVar[dict[str, Any]] = {"latent": 16, "width": 32}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.model = ConvVAE(o["latent"], o["width"])
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, x, g, bf16, labels=None):
        nll, kl = self.model.elbo_terms(dequantize(x, g), g)
        loss = (nll + kl).mean() / 784
        opt = self.optimizers["adam"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        opt.step()
        return {"loss": float(loss.detach()), "kl": float(kl.mean().detach())}

    loss_names = ("loss", "kl")

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        g = torch.Generator().manual_seed(1234)
        x = val[:1000]
        nll, kl = model.elbo_terms(dequantize(x, g), g)
        recon = model.decode(model.encode(x)[0])
        return {"elbo_bpd": bits_per_dim(nll + kl), "recon_psnr": _psnr(recon, x)}


class AutoencoderTask(Task):
    """The first stage of latent diffusion: squared error plus a weak KL penalty (``beta``) on a
    ``KLAutoencoder``; validation sets its ``latent_std`` from the val split's latent means."""

    architecture = "KLAutoencoder"
    loss_names = ("loss", "kl")
    val_names = ("recon_psnr", "kl", "latent_std")
    defaults: ClassVar[dict[str, Any]] = {"latent_channels": 4, "width": 48, "beta": 1e-4}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.beta = float(o["beta"])
        self.model = KLAutoencoder(o["latent_channels"], o["width"])
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, x, g, bf16, labels=None):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rec, kl = self.model.loss_terms(x, g)
        loss = (rec.float() + self.beta * kl.float()).mean() / x[0].numel()
        out = _adam_step(self, loss)
        return {**out, "kl": float(kl.float().mean().detach())}

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        x = val[:1000]
        mu, logstd = model.encode(x)
        kl = 0.5 * (mu**2 + (2 * logstd).exp() - 2 * logstd - 1).flatten(1).sum(1)
        std = mu.std()
        for m in {id(model): model, id(self.model): self.model}.values():
            m.latent_std.fill_(float(std))
        return {"recon_psnr": _psnr(model.decode(mu).clamp(0, 1), x), "kl": float(kl.mean()), "latent_std": float(std)}


def load_autoencoder(ref: str) -> tuple[KLAutoencoder, dict[str, Any]]:
    """A trained ``KLAutoencoder`` (frozen) and its metadata, by zoo name or weights file."""
    from pathlib import Path

    from .._checks import InvpriorError
    from .checkpoint import _sha256, load_model

    if ref.endswith(".safetensors"):
        file = Path(ref)
    else:
        from ..zoo import path

        file = path(ref)
    model, meta = load_model(file)
    meta = {**meta, "sha256": _sha256(file)}
    if not isinstance(model, KLAutoencoder):
        raise InvpriorError(f"{ref} is a {meta.get('architecture')}, not a KLAutoencoder (invprior train ae)")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta


class LatentDiffusionTask(Task):
    """EDM denoising score matching on the normalised latents ``z / latent_std`` of a trained
    ``KLAutoencoder`` (``-o autoencoder=ae-shapes``, the default ``ae-DATA``); one reparameterised
    latent draw per image and step. Validation: PSNR against the images of the decoded denoised
    latents at latent noise 0.2, 0.5, 1 (the autoencoder's own error included)."""

    architecture = "EDMDenoiser(DiffusionUNet)"
    ema_module = "model"
    val_names = ("img psnr@0.2", "img psnr@0.5", "img psnr@1")
    defaults: ClassVar[dict[str, Any]] = {"widths": [64, 96], "blocks": 1, "emb": 128, "attention": True,
                                          "dropout": 0.0}  # fmt: skip

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.ae_ref = str(o.get("autoencoder") or f"ae-{cfg.data}")
        self.ae, ae_meta = load_autoencoder(self.ae_ref)
        self.ae_sha = ae_meta.get("sha256")
        c = self.ae.latent_shape[0]
        net = DiffusionUNet(c, tuple(o["widths"]), o["blocks"], o["emb"], o["attention"], o["dropout"])
        self.model = EDMDenoiser(net, sigma_data=1.0)  # unit-std latents
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    @torch.no_grad()
    def _latents(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        mu, logstd = self.ae.encode(x)
        if g is not None:
            mu = mu + logstd.exp() * torch.randn(mu.shape, generator=g)
        return mu / self.ae.latent_std

    def step(self, x, g, bf16, labels=None):
        return _adam_step(self, edm_loss_net(self.model, self._latents(x, g), g, bf16=bf16))

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        g = torch.Generator().manual_seed(1234)
        x = val[:512]
        z = self._latents(x, None)
        out = {}
        for s in (0.2, 0.5, 1.0):
            d = model.forward_net_space(z + s * torch.randn(z.shape, generator=g), torch.full((len(x),), s))
            out[f"img psnr@{s:g}"] = _psnr(self.ae.decode(d * self.ae.latent_std).clamp(0, 1), x)
        return out

    def export_metadata(self) -> dict[str, Any]:
        return {"autoencoder": self.ae_ref, "autoencoder_sha256": self.ae_sha,
                "latent_shape": list(self.ae.latent_shape)}  # fmt: skip


class GANTask(Task):
    """Hinge-loss GAN: spectrally normalised discriminator, BatchNorm generator, EMA generator."""

    architecture = "DCGANGenerator"
    ema_module = "generator"
    export_module = "generator"
    loss_names = ("d_loss", "g_loss")
    val_names = ("d_real", "d_fake")
    defaults: ClassVar[dict[str, Any]] = {"latent": 32, "width": 64}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.G = DCGANGenerator(o["latent"], o["width"])
        self.D = DCGANDiscriminator(o["width"])
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {
            "g": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.0, 0.9)),
            "d": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.0, 0.9)),
        }

    def step(self, x, g, bf16, labels=None):
        z = torch.randn(x.shape[0], self.G.latent, generator=g)
        fake = self.G(z)
        d_loss = F.relu(1 - self.D(x)).mean() + F.relu(1 + self.D(fake.detach())).mean()
        self.optimizers["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["d"].step()
        g_loss = -self.D(fake).mean()
        self.optimizers["g"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["g"].step()
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach())}

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        g = torch.Generator().manual_seed(1234)
        self.D.eval()
        z = torch.randn(500, model.latent, generator=g)
        out = {"d_real": float(self.D(val[:500]).mean()), "d_fake": float(self.D(model(z)).mean())}
        self.D.train()
        return out


class FlowTask(Task):
    """Maximum likelihood of a ``RealNVP`` on dequantised pixels (float32: log-determinants)."""

    architecture = "RealNVP"
    val_names = ("bpd",)
    defaults: ClassVar[dict[str, Any]] = {"couplings": 6, "hidden": 128, "alpha": 0.05}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.model = RealNVP(o["couplings"], o["hidden"], o["alpha"])
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, x, g, bf16, labels=None):
        nll = -self.model.log_prob(dequantize(x, g))
        loss = nll.mean() / 784
        opt = self.optimizers["adam"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        g = torch.Generator().manual_seed(1234)
        return {"bpd": bits_per_dim(-model.log_prob(dequantize(val[:1000], g)))}


class ClassifierTask(Task):
    """Cross-entropy of the Fréchet-distance feature extractor (light shift/noise augmentation)."""

    architecture = "Classifier"
    with_labels = True
    val_names = ("accuracy",)
    defaults: ClassVar[dict[str, Any]] = {"width": 32, "features": 128}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.model = Classifier(10, o["width"], o["features"])
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}

    def step(self, x, g, bf16, labels=None):
        self.model.train()
        shift = torch.randint(-2, 3, (2,), generator=g).tolist()
        x = torch.roll(x, shifts=shift, dims=(-2, -1))
        loss = F.cross_entropy(self.model(x), labels)
        opt = self.optimizers["adam"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        model.eval()
        acc = float((model(val).argmax(1) == labels).float().mean())
        model.train()
        return {"accuracy": acc}


def _unet(o: dict[str, Any], cond: int) -> DiffusionUNet:
    return DiffusionUNet(1, tuple(o["widths"]), o["blocks"], o["emb"], o["attention"], o["dropout"], cond)


def _family(o: dict[str, Any]) -> dict[str, Any]:
    """The operator family of a conditional run: all of ``FAMILY``, or ``-o tasks='["sr"]'``."""
    tasks = o.get("tasks") or list(TASK_NAMES)
    bad = [t for t in tasks if t not in TASK_NAMES]
    if bad:
        raise ValueError(f"unknown tasks {bad}; the family has {', '.join(TASK_NAMES)}")
    return {**{t: FAMILY[t] for t in tasks}, "sigma": FAMILY["sigma"]}


def _family_val(val: torch.Tensor, family: dict[str, Any], n: int = 128) -> dict[str, tuple[torch.Tensor, ...]]:
    """Fixed validation conditions per task of the family (seeded): name -> (x, cond)."""
    out = {}
    for i, task in enumerate(TASK_NAMES):
        if task in family:
            g = torch.Generator().manual_seed(4321 + i)
            x = val[:n]
            out[task] = (x, sample_family(x, g, family, (task,)))
    return out


class E2ETask(Task):
    """Supervised end-to-end reconstruction (MSE) over the operator family of ``models.conditional``."""

    architecture = "E2EUNet"
    ema_module = "model"
    val_names = tuple(f"psnr_{t}" for t in TASK_NAMES)
    defaults: ClassVar[dict[str, Any]] = {**DiffusionTask.defaults}

    def __init__(self, cfg: TrainConfig):
        o = {**self.defaults, **cfg.options}
        self.family = _family(o)
        self.model = E2EUNet(_unet(o, 2), self.family)
        self.val_names = tuple(f"psnr_{t}" for t in TASK_NAMES if t in self.family)
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}
        self._val = None

    def step(self, x, g, bf16, labels=None):
        cond = sample_family(x, g, self.family)
        return _adam_step(self, ((self.model(cond, bf16=bf16) - x) ** 2).mean())

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        self._val = self._val or _family_val(val, self.family)
        return {f"psnr_{t}": _psnr(model(c).clamp(0, 1), x) for t, (x, c) in self._val.items()}


class FlowMatchingTask(Task):
    """Flow matching on the Gaussian path; conditional (``cfm``: over the operator family) or not (``fm``)."""

    architecture = "FlowUNet"
    ema_module = "model"
    defaults: ClassVar[dict[str, Any]] = {**DiffusionTask.defaults}

    def __init__(self, cfg: TrainConfig, conditional: bool):
        o = {**self.defaults, **cfg.options}
        self.conditional = conditional
        self.family = _family(o) if conditional else None
        self.model = FlowUNet(_unet(o, 3 if conditional else 0), self.family)
        self.modules = {"model": self.model}
        self.optimizers = {"adam": torch.optim.Adam(self.model.parameters(), lr=cfg.lr)}
        self.val_names = (
            tuple(f"psnr_{t}" for t in TASK_NAMES if t in self.family)
            if self.family
            else ("psnr@0.1", "psnr@0.2", "psnr@0.5")
        )
        self._val = None

    def step(self, x, g, bf16, labels=None):
        cond = sample_family(x, g, self.family) if self.conditional else None
        return _adam_step(self, self.model.loss(x, g, cond, bf16=bf16))

    @torch.no_grad()
    def validate(self, model, val, labels=None):
        if not self.conditional:
            return _denoising_psnrs(FlowDenoiser(model), val)
        g = torch.Generator().manual_seed(1234)
        self._val = self._val or _family_val(val, self.family, 64)
        return {  # one draw, 10 Euler steps
            f"psnr_{t}": _psnr(model.sample(len(x), tuple(x.shape[1:]), 10, g, c).clamp(0, 1), x)
            for t, (x, c) in self._val.items()
        }


TASKS: dict[str, type[Task]] = {
    "diffusion": DiffusionTask, "vae": VAETask, "gan": GANTask, "flow": FlowTask, "classifier": ClassifierTask,
    "e2e": E2ETask, "cfm": FlowMatchingTask, "fm": FlowMatchingTask, "ae": AutoencoderTask,
    "ldm": LatentDiffusionTask,
}  # fmt: skip
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "diffusion": {"steps": 6000, "lr": 1e-3, "ema": 0.999},
    "vae": {"steps": 8000, "lr": 1e-3},
    "gan": {"steps": 8000, "lr": 2e-4, "ema": 0.999},
    "flow": {"steps": 8000, "lr": 5e-4},
    "classifier": {"steps": 3000, "lr": 1e-3},
    "e2e": {"steps": 4000, "lr": 1e-3, "ema": 0.999},
    "cfm": {"steps": 5000, "lr": 1e-3, "ema": 0.999},
    "fm": {"steps": 4000, "lr": 1e-3, "ema": 0.999},
    "ae": {"steps": 4000, "lr": 1e-3},
    "ldm": {"steps": 5000, "lr": 1e-3, "ema": 0.999},
}


def make_task(cfg: TrainConfig) -> Task:
    """Build the task of ``cfg.kind`` (its data statistics come from the train split)."""
    from ..data import dataset

    if cfg.kind not in TASKS:
        raise ValueError(f"unknown model kind {cfg.kind!r}; choose one of: {', '.join(TASKS)}")
    torch.manual_seed(cfg.seed)
    if cfg.kind == "diffusion":
        train = dataset(cfg.data, "train")
        sd = float((2 * train - 1).std())
        return DiffusionTask(cfg, sigma_data=round(sd, 4), channels=int(train.shape[1]))
    if cfg.kind in ("cfm", "fm"):
        return FlowMatchingTask(cfg, conditional=cfg.kind == "cfm")
    return TASKS[cfg.kind](cfg)
