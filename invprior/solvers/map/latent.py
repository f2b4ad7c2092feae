"""MAP with a deep generative prior: GAN/VAE latent MAP (CSGM), flow MAP in x and in z, deep image prior.

All minimise ``-log p(y | x)`` (``problem.nll``: any noise model, any differentiable operator,
linear or not) plus a prior term, with Adam (or L-BFGS) over a latent or image variable. Restarts
run as one batch; the best restart per measurement is kept and the spread between restarts is
returned as ``Result.std`` (a cheap uncertainty signal, not a posterior spread).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._checks import InvpriorError, make_generator
from ...operators import Problem
from ...priors.generative import Flow, LatentGenerator
from ...result import Diagnostics, Result
from .._common import bar, initial_estimate
from ..registry import register

__all__ = ["csgm", "dip", "flow_map_x", "flow_map_z", "vae_map"]


def _repeat(problem: Problem, k: int) -> Problem:
    """The problem with every measurement repeated ``k`` times (restart r of measurement b at r * B + b)."""
    y = problem.y.repeat(k, *([1] * (problem.y.dim() - 1)))
    truth = None if problem.truth is None else problem.truth.repeat(k, *([1] * (problem.truth.dim() - 1)))
    return Problem(problem.operator, y, problem.noise, truth)


def _optimise(params: list[torch.Tensor], loss_fn, steps: int, lr: float, optimizer: str, name: str, progress: bool,
              after_step=None):  # fmt: skip
    """Minimise ``loss_fn() -> (per-item losses)`` summed (Adam with a cosine-decayed step, or L-BFGS);
    returns the trace of the mean loss. ``after_step()`` runs after every Adam step (a projection)."""
    trace: list[float] = []
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
        with bar(steps, name, progress) as pb:
            for it in range(steps):
                with torch.enable_grad():
                    loss = loss_fn()
                    opt.zero_grad(set_to_none=True)
                    loss.sum().backward()
                for group in opt.param_groups:  # cosine decay of the step to lr / 100
                    group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * it / steps)))
                opt.step()
                if after_step is not None:
                    after_step()
                trace.append(float(loss.detach().mean()))
                pb.update()
    elif optimizer == "lbfgs":
        if after_step is not None:
            raise InvpriorError(f"{name}: a projected objective runs with optimizer='adam'")
        opt = torch.optim.LBFGS(
            params, lr=lr, max_iter=20, line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-12
        )

        def closure():
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = loss_fn().sum()
                loss.backward()
            return loss

        with bar(steps, name, progress) as pb:
            for _ in range(steps):
                opt.step(closure)
                with torch.no_grad():
                    trace.append(float(loss_fn().mean()))
                pb.update()
    else:
        raise InvpriorError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    return trace


def _best_of_restarts(problem: Problem, xs: torch.Tensor, zs: torch.Tensor, losses: torch.Tensor, k: int,
                      trace: list[float], name: str) -> Result:  # fmt: skip
    B = problem.batch
    xs = xs.detach().reshape(k, B, *xs.shape[1:])
    zs = zs.detach().reshape(k, B, *zs.shape[1:])
    L = losses.detach().reshape(k, B)
    best = L.argmin(0)
    idx = torch.arange(B)
    x_best, z_best = xs[best, idx], zs[best, idx]
    diag = Diagnostics(iterations=len(trace), loss_trace=trace)
    diag.extra = {"latent": z_best.tolist() if z_best.numel() <= 4096 else None, "restarts": k,
                  "restart_losses": L.T.tolist(), "best_restart": best.tolist()}  # fmt: skip
    std = xs.std(0, correction=1) if k > 1 else None
    return Result(xs, x_best, std, diag, name)


def _latent_map(problem, prior, z0, lam, steps, lr, optimizer, name, progress, nll_fn=None):
    k = z0.shape[0] // problem.batch
    big = _repeat(problem, k)
    z = z0.detach().clone().requires_grad_(True)
    nll = nll_fn or big.nll

    def loss_fn():
        return nll(prior(z)) + 0.5 * lam * (z**2).sum(1)

    trace = _optimise([z], loss_fn, steps, lr, optimizer, name, progress)
    with torch.no_grad():
        losses = loss_fn()
        xs = prior(z)
    return _best_of_restarts(problem, xs, z, losses, k, trace, name)


def _check_generator(prior, name: str, need_encoder: bool = False) -> LatentGenerator:
    if not isinstance(prior, LatentGenerator):
        raise InvpriorError(
            f"{name} needs a LatentGenerator prior (a GAN or VAE from ip.zoo), got {type(prior).__name__}"
        )
    if need_encoder and not prior.has_encoder:
        raise InvpriorError(f"{name} needs a VAE (a LatentGenerator with an encoder); {prior.name} has none — use csgm")
    return prior


@register("csgm", family="map", needs=("latent",), reference="Bora et al. 2017, arXiv:1703.03208")
def csgm(
    problem: Problem,
    prior,
    *,
    lam: float = 1.0,
    restarts: int = 8,
    steps: int = 1000,
    lr: float = 0.1,
    optimizer: str = "adam",
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Compressed sensing with a generative model (CSGM, Bora, Jalal, Price & Dimakis 2017):

        z* = argmin_z  -log p(y | G(z)) + lam/2 ||z||²,     x* = G(z*)

    (for Gaussian noise ``||A G(z) - y||² / (2 sigma_y²) + lam/2 ||z||²``; ``lam = 1`` is the MAP of
    the N(0, I) latent prior). ``restarts`` random starts ``z ~ N(0, I)`` run as one batch and the
    lowest objective wins; ``Result.std`` is the spread between restarts, ``samples`` all of them.
    Defaults (1000 Adam steps from lr 0.1 with cosine decay, 8 restarts) from validation
    (docs/results/generative-map-tuning.md): 300 steps left χ² at 30-60 on compressed sensing.
    """
    prior = _check_generator(prior, "csgm")
    g = make_generator(seed)
    z0 = torch.randn(restarts * problem.batch, prior.latent_dim, generator=g, dtype=problem.dtype)
    return _latent_map(problem, prior, z0, lam, steps, lr, optimizer, "csgm", progress)


@register("vae_map", family="map", needs=("latent",), reference="Bora et al. 2017; course chapter 003")
def vae_map(
    problem: Problem,
    prior,
    *,
    lam: float = 1.0,
    restarts: int = 4,
    steps: int = 1000,
    lr: float = 0.05,
    optimizer: str = "adam",
    decoder_variance: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """VAE latent MAP: as ``csgm`` with the VAE decoder, started from the encoder applied to a
    back-projection (``A⁺ y`` / ``A^T y`` clipped to [0, 1]); the other restarts add N(0, 0.5² I)
    to that start. With ``decoder_variance`` the likelihood accounts for the decoder's own
    per-pixel std ``s`` (``x = G(z) + s ε``): for Gaussian noise and a pixel-selecting operator
    (inpainting, identity) exactly, ``y ~ N(A G(z), sigma_y² + A(s²))``; for other operators
    with the scalar bound ``sigma_y² + max(s²) ||A||²``. Defaults (1000 steps) from validation
    (docs/results/generative-map-tuning.md).
    """
    from ...operators import GaussianNoise, Identity, Inpainting

    prior = _check_generator(prior, "vae_map", need_encoder=True)
    g = make_generator(seed)
    with torch.no_grad():
        start = prior.encode(initial_estimate(problem).clamp(0, 1))
    z0 = start.repeat(restarts, 1)
    if restarts > 1:
        z0[problem.batch :] += 0.5 * torch.randn(z0[problem.batch :].shape, generator=g, dtype=z0.dtype)
    nll_fn = None
    if decoder_variance:
        if not isinstance(problem.noise, GaussianNoise) or prior.decoder_std is None:
            raise InvpriorError("decoder_variance needs Gaussian noise and a VAE with a decoder std")
        A = problem.operator
        s2 = prior.decoder_std.to(problem.dtype) ** 2
        sy2 = float(problem.noise.sigma) ** 2
        if isinstance(A, (Inpainting, Identity)):
            var = sy2 + A(s2.expand(1, *s2.shape))
        else:
            var = torch.tensor(sy2 + float(s2.max()) * A.norm() ** 2, dtype=problem.dtype)
        y = problem.y.repeat(restarts, *([1] * (problem.y.dim() - 1)))

        def nll_fn(x: torch.Tensor) -> torch.Tensor:
            r = (y - A(x)) ** 2 / var + torch.log(2 * math.pi * var).expand_as(y)
            return 0.5 * r.flatten(1).sum(1)

    return _latent_map(problem, prior, z0, lam, steps, lr, optimizer, "vae_map", progress, nll_fn)


def _check_flow(prior, name: str) -> Flow:
    if not isinstance(prior, Flow):
        raise InvpriorError(f"{name} needs a Flow prior (e.g. ip.zoo.load('flow-shapes')), got {type(prior).__name__}")
    return prior


@register("flow_map_x", family="map", needs=("flow",), reference="Asim et al. 2020, arXiv:1905.11672")
def flow_map_x(
    problem: Problem,
    prior,
    *,
    lam: float = 1.0,
    steps: int = 500,
    lr: float = 0.02,
    optimizer: str = "adam",
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Flow MAP in image space: ``x* = argmin_x -log p(y | x) - lam log p_flow(x)``.

    Optimised through the flow, ``x = f⁻¹(z)`` (a reparametrisation: same minimisers, with
    ``log p_flow(x) = log N(z) - log|det dx/dz|`` from the inverse pass), started from ``f`` of the
    back-projection clipped to [0.05, 0.95]; Adam with a cosine-decayed step. On the zoo's
    RealNVP this reaches lower objectives than Adam on the pixels themselves (which stalled ~1000
    nats above the truth's objective on compressed sensing, below the back-projection's PSNR); it
    is still a non-convex problem and ``diagnostics.extra["objective"]`` reports the value reached, to compare with the
    objective at a reference image.
    """
    prior = _check_flow(prior, "flow_map_x")
    z = _flow_start(problem, prior).requires_grad_(True)

    def loss_fn():
        x, log_p = prior.inverse_log_prob(z)
        return problem.nll(x) - lam * log_p

    trace = _optimise([z], loss_fn, steps, lr, optimizer, "flow_map_x", progress)
    with torch.no_grad():
        x = prior.inverse(z)
        objective = loss_fn()
    res = Result.from_point(x, Diagnostics(iterations=len(trace), loss_trace=trace), "flow_map_x")
    res.diagnostics.extra = {"latent": z.detach().tolist() if z.numel() <= 4096 else None,
                             "objective": objective.tolist()}  # fmt: skip
    return res


def _flow_start(problem: Problem, prior: Flow) -> torch.Tensor:
    """``f`` of the back-projection (clipped to [0.05, 0.95] for flows on the pixel box)."""
    x0 = initial_estimate(problem)
    with torch.no_grad():
        z0, _ = prior.forward(x0.clamp(0.05, 0.95) if hasattr(prior.model, "alpha") else x0)
    return z0.detach().clone().to(problem.dtype)


@register("flow_map_z", family="map", needs=("flow",), reference="Asim et al. 2020; Whang et al. 2021")
def flow_map_z(
    problem: Problem,
    prior,
    *,
    lam: float = 1.0,
    steps: int = 300,
    lr: float = 0.05,
    optimizer: str = "adam",
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Flow MAP in latent space: ``z* = argmin_z -log p(y | f⁻¹(z)) + lam/2 ||z||²``, ``x* = f⁻¹(z*)``,
    started from ``f`` of the back-projection clipped to [0.05, 0.95]. (Not the same point as
    ``flow_map_x``: the latent objective ignores the flow's log-determinant.)"""
    prior = _check_flow(prior, "flow_map_z")
    z = _flow_start(problem, prior).requires_grad_(True)

    def loss_fn():
        return problem.nll(prior.inverse(z)) + 0.5 * lam * (z**2).sum(1)

    trace = _optimise([z], loss_fn, steps, lr, optimizer, "flow_map_z", progress)
    with torch.no_grad():
        x = prior.inverse(z)
        objective = loss_fn()
    res = Result.from_point(x, Diagnostics(iterations=len(trace), loss_trace=trace), "flow_map_z")
    res.diagnostics.extra = {"latent": z.detach().tolist() if z.numel() <= 4096 else None,
                             "objective": objective.tolist()}  # fmt: skip
    return res


class _DIPNet(nn.Module):
    """A small encoder-decoder (Ulyanov et al. 2018, scaled down): input fixed noise, output in [0, 1]."""

    def __init__(self, cin: int, cout: int, width: int = 64):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(o),
                                 nn.LeakyReLU(0.2))  # fmt: skip

        self.down = nn.Sequential(block(cin, width), nn.Conv2d(width, width, 3, 2, 1), block(width, width))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), block(width, width))
        self.skip = block(cin, 8)
        self.out = nn.Conv2d(width + 8, cout, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.down(z))[..., : z.shape[-2], : z.shape[-1]]
        return torch.sigmoid(self.out(torch.cat([h, self.skip(z)], dim=1)))


@register("dip", family="map", needs=("image",), reference="Ulyanov et al. 2018, arXiv:1711.10925")
def dip(
    problem: Problem,
    prior=None,
    *,
    steps: int = 1000,
    lr: float = 0.01,
    width: int = 64,
    stop_chi2: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Deep image prior: fit an untrained network's output to the data,
    ``theta* = argmin -log p(y | f_theta(z0))`` with fixed noise ``z0``, Adam, and **early stopping**
    when the data fit reaches the noise level (χ² of every measurement ≤ ``stop_chi2``): the
    discrepancy principle replaces the oracle stopping of the paper. Needs no prior (``prior`` is
    ignored). One network per measurement (seed + index), so the same seed gives the same images.
    """
    c, h, w = problem.operator.in_shape
    xs, traces, stops = [], [], []
    for b in range(problem.batch):  # one network per measurement, as in the paper
        sub = Problem(problem.operator, problem.y[b : b + 1], problem.noise,
                      None if problem.truth is None else problem.truth[b : b + 1])  # fmt: skip
        torch.manual_seed(seed + b)
        z0 = 0.1 * torch.rand(1, 32, h, w, generator=make_generator(seed + b))
        net = _DIPNet(32, c, width)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        trace, stopped = [], None
        with bar(steps, f"dip {b + 1}/{problem.batch}", progress) as pb:
            for it in range(steps):
                with torch.enable_grad():
                    loss = sub.nll(net(z0).to(problem.dtype))
                    opt.zero_grad(set_to_none=True)
                    loss.sum().backward()
                opt.step()
                trace.append(float(loss.detach().sum()))
                pb.update(loss.detach())
                if it % 10 == 9:
                    with torch.no_grad():
                        if float(sub.chi2(net(z0).to(problem.dtype))[0]) <= stop_chi2:
                            stopped = it + 1
                            break
        with torch.no_grad():
            xs.append(net(z0).to(problem.dtype))
        traces.append(trace)
        stops.append(stopped)
    x = torch.cat(xs)
    diag = Diagnostics(iterations=max(len(t) for t in traces), loss_trace=traces[0],
                       converged=all(s is not None for s in stops))  # fmt: skip
    diag.extra = {"stopped_at": stops}
    return Result.from_point(x, diag, "dip")
