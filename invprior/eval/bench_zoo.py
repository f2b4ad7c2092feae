"""Quality of the shipped generative models (``invprior bench zoo``).

Per model, against the test split of its dataset:

- **Fréchet distance** (FD) of ``n`` samples in the features of the zoo classifier of that dataset,
  beside the **floor**: the FD of ``n`` train images to the same test split (what a perfect
  sampler with this many samples would score; it is not zero because both sets are finite).
- **bits per dimension** on the test split: exact for the flow, the ELBO bound for the VAE
  (one posterior draw per image, dequantised 8-bit pixels, fixed seed).
- **Memorisation**: the pixel-space distance of each sample to its nearest train image, compared
  with the same distance for test images (which the model never saw). ``copies`` is the fraction
  of samples nearer to a train image than 99 % of test images are.
- For diffusion models, the denoising PSNR of ``D(x, 0.2)`` on test images against the best linear
  (Wiener) denoiser fitted on the train split.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .._checks import InvpriorError
from .._io import save_png
from ..data import dataset
from .metrics import frechet_distance, psnr

__all__ = ["nearest_train_distance", "nfe_sweep", "run", "sample_model", "wiener_denoise"]


def sample_model(model, n: int, seed: int = 0, steps: int = 18) -> torch.Tensor:
    """``n`` samples in [0, 1] from any zoo prior."""
    from ..priors import Diffusion, Flow, LatentDiffusion, LatentGenerator

    if isinstance(model, (Diffusion, LatentDiffusion)):
        return model.sample(n, steps=steps, seed=seed, progress=True).clamp(0, 1)
    if isinstance(model, (LatentGenerator, Flow)):
        return model.sample(n, seed=seed).clamp(0, 1)
    raise TypeError(f"cannot sample from {model!r}")


def nearest_train_distance(x: torch.Tensor, train: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Euclidean distance (pixels in [0, 1]) of each image of ``x`` to its nearest train image."""
    t = train.flatten(1).double()
    tn = (t**2).sum(1)
    out = []
    for i in range(0, len(x), batch):
        q = x[i : i + batch].flatten(1).double()
        d2 = (q**2).sum(1, keepdim=True) + tn[None] - 2 * q @ t.T
        out.append(d2.clamp_min(0).min(1).values.sqrt())
    return torch.cat(out)


def wiener_denoise(train: torch.Tensor, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """The best linear denoiser for additive white Gaussian noise: ``mu + S (S + sigma² I)^-1 (y - mu)``
    with the mean and covariance of the train split."""
    x = train.flatten(1).double()
    mu = x.mean(0)
    S = torch.cov(x.T)
    W = torch.linalg.solve(S + sigma**2 * torch.eye(S.shape[0], dtype=S.dtype), S)  # symmetric S: W^T = S (S+s²I)^-1
    y = noisy.flatten(1).double() - mu
    return (mu + y @ W).reshape(noisy.shape).to(noisy.dtype)


def _grid(x: torch.Tensor, rows: int = 8) -> torch.Tensor:
    k = rows * rows
    x = x[:k, 0]
    h, w = x.shape[-2:]
    pad = torch.ones(k, h + 2, w + 2)
    pad[:, 1:-1, 1:-1] = x
    return pad.reshape(rows, rows, h + 2, w + 2).permute(0, 2, 1, 3).reshape(rows * (h + 2), rows * (w + 2))


GENERATIVE = ("diffusion", "fm", "vae", "gan", "flow", "ldm")


def _check_names(names: list[str], kinds: tuple[str, ...], what: str) -> None:
    """Refuse, before any sampling, a model this benchmark cannot score."""
    from .. import zoo

    for name in names:
        card = zoo.info(name)
        if card.get("kind") not in kinds or card.get("data") not in ("shapes", "digits"):
            raise InvpriorError(
                f"{what} scores {'/'.join(kinds)} models of shapes or digits; {name} is a {card.get('kind')} model "
                f"of {card.get('data')}" + (" (a conditional model: see invprior bench challenge)"
                                            if card.get("kind") in ("e2e", "cfm") else "")
            )  # fmt: skip


def run(names: list[str] | None, n: int, out: Path, seed: int = 0) -> list[dict]:
    """Score the named zoo models (default: every diffusion/VAE/GAN/flow model shipped)."""
    from .. import zoo
    from ..models.tasks import bits_per_dim, dequantize

    if names is not None:
        _check_names(names, GENERATIVE, "bench zoo")

    if names is None:
        names = [
            r["name"] for r in zoo.list() if r["kind"] in GENERATIVE and r["dataset"] in ("shapes", "digits")
        ]  # the Frechet features exist for these only; fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    floors: dict[str, tuple[float, torch.Tensor]] = {}
    for name in names:
        model = zoo.load(name)
        card = zoo.info(name)
        data = card.get("data") or model.info.get("data")
        train, test = dataset(data, "train"), dataset(data, "test")
        if data not in floors:
            g = torch.Generator().manual_seed(seed)
            sub = train[torch.randperm(len(train), generator=g)[: min(n, len(train))]]
            test_nn = nearest_train_distance(test, train)
            floors[data] = (frechet_distance(sub, test, data), test_nn)
        floor, test_nn = floors[data]
        t0 = time.perf_counter()
        x = sample_model(model, n, seed=seed)
        t_sample = time.perf_counter() - t0
        fd = frechet_distance(x, test, data)
        nn_d = nearest_train_distance(x[:1000], train)
        row = {
            "model": name, "kind": card.get("kind"), "data": data, "samples": n,
            "FD": round(fd, 2), "FD floor (train vs test)": round(floor, 2),
            "NN dist samples (median)": round(float(nn_d.median()), 3),
            "NN dist test (median)": round(float(test_nn.median()), 3),
            "copies": round(float((nn_d < torch.quantile(test_nn, 0.01)).double().mean()), 4),
            "sample s": round(t_sample, 1),
        }  # fmt: skip
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            if card.get("kind") == "flow":
                row["test bpd"] = round(bits_per_dim(-model.log_prob(dequantize(test, g))), 3)
            if card.get("kind") == "vae":
                nll, kl = model.module.elbo_terms(dequantize(test, g), g)
                row["test bpd (ELBO bound)"] = round(bits_per_dim(nll + kl), 3)
            if card.get("kind") in ("diffusion", "fm"):
                xt = test[:500]
                noisy = xt + 0.2 * torch.randn(xt.shape, generator=g)
                row["denoise PSNR@0.2"] = round(psnr(model.denoise(noisy, 0.2).clamp(0, 1), xt), 2)
                row["Wiener PSNR@0.2"] = round(psnr(wiener_denoise(train, noisy, 0.2).clamp(0, 1), xt), 2)
        save_png(_grid(x), out / f"{name}-samples.png")
        rows.append(row)
        print(row)
    return rows


def nfe_sweep(names: list[str], nfes: list[int], n: int = 1000, seed: int = 0) -> list[dict]:
    """Fréchet distance to the test split against network evaluations per sample, per model and
    sampler: for every prior the deterministic Heun sampler of Karras et al. in the sigma view
    (``NFE = 2 steps - 1``) and the Euler/DDIM step on the same schedule (``NFE = steps``); for a
    flow-matching prior also its native Euler integration of ``dx/dt = v`` on a uniform ``t`` grid."""
    from .. import zoo

    _check_names(names, ("diffusion", "fm"), "bench zoo --nfe")
    rows = []
    for name in names:
        model = zoo.load(name)
        data = zoo.info(name).get("data") or model.info.get("data")
        test = dataset(data, "test")
        for nfe in nfes:
            runs = {"heun (sigma)": ("heun", (nfe + 1) // 2), "euler (sigma)": ("euler", nfe)}
            if hasattr(model, "flow"):
                runs["euler (flow t)"] = ("flow", nfe)
            for label, (solver, steps) in runs.items():
                if steps < 1:
                    continue
                t0 = time.perf_counter()
                if solver == "flow":
                    g = torch.Generator().manual_seed(seed)
                    x = torch.cat([model.flow.sample(min(500, n - i), model.shape, steps, g) for i in range(0, n, 500)])
                    used = steps
                else:
                    x = model.sample(n, steps=steps, seed=seed, solver=solver)
                    used = 2 * steps - 1 if solver == "heun" else steps
                x = x.clamp(0, 1)
                fd = round(frechet_distance(x, test, data), 2)
                row = {"model": name, "data": data, "sampler": label, "NFE": used, "FD": fd,
                       "time s": round(time.perf_counter() - t0, 1)}  # fmt: skip
                rows.append(row)
                print(row)
    return rows
