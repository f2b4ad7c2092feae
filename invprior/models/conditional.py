"""Measurement-conditioned networks: end-to-end reconstructors and flow-matching velocity fields.

One conditional network per dataset covers the four tasks of ``invprior bench challenge``: it is
conditioned on the operator as well as on ``y`` and trained on a *family* of operators
(``FAMILY``). The condition is three maps of the image size (``condition``):

1. ``2 A⁺y - 1``, the pseudo-inverse of the measurement in the network's [-1, 1] space
   (inpainting: zero-filled; SR: nearest-neighbour upsampling; MRI: zero-filled inverse FFT);
2. the pixel-domain share of information: the inpainting mask, ``1/f²`` for SR ×f, ``1/R`` for
   MRI at acceleration R;
3. the k-space mask (``fftshift``-ed) for MRI, ones otherwise.

``describe(A)`` names an operator's task and parameters; ``family_check`` says whether they lie in the
trained family (operator shift is allowed, with a warning; another operator type is refused).

Networks (both ``DiffusionUNet`` bodies, in [-1, 1] space):

- ``E2EUNet``: ``x̂ = A⁺y + F(A⁺y, maps)`` trained with the MSE to ``x``;
- ``FlowUNet``: a velocity field ``v(x_t, t | c)`` on the Gaussian path ``x_t = (1 - t) x0 + t ε``
  (``t = 0`` data, ``t = 1`` noise; ``v = ε - x0``), conditional (CFM) when ``cond_channels = 3``
  and unconditional (a flow-matching prior) when 0. ``FlowUNet.denoiser`` turns the latter into
  ``D(x, σ)`` by the exact change of variables ``x_t = (1 - t) x_σ``, ``σ = t / (1 - t)``,
  ``x̂0 = x_t - t v``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import InvpriorError
from .unet import DiffusionUNet

__all__ = [
    "FAMILY", "E2EUNet", "FlowDenoiser", "FlowUNet", "OutOfFamilyWarning", "condition", "describe",
    "family_check", "sample_family",
]  # fmt: skip

# the operator family the conditional models of the zoo are trained on (per item: a task drawn
# uniformly, its parameters uniformly in these ranges, noise sigma uniformly in "sigma")
FAMILY: dict[str, Any] = {
    "inpaint": {"missing": [0.5, 0.8]},
    "box": {"side": [8, 16]},
    "sr": {"factor": [4, 4]},
    "mri": {"acceleration": [3.0, 5.0]},
    "sigma": [0.03, 0.07],
}
TASK_NAMES = ("inpaint", "box", "sr", "mri")


class OutOfFamilyWarning(UserWarning):
    """A conditional model runs on an operator or noise level outside the family it was trained on."""


def describe(A) -> tuple[str, dict[str, float]]:
    """The task of an operator in the conditional family and its parameters, e.g. ``("sr", {"factor": 4})``.

    Any other operator type is an error that names the family's operators.
    """
    from ..operators import MRI, Inpainting, SuperResolution

    if isinstance(A, Inpainting):
        keep = A.mask[0]
        missing = 1.0 - float(keep.float().mean())
        miss = ~keep
        rows, cols = miss.any(1).nonzero(), miss.any(0).nonzero()
        if len(rows) and int(miss.sum()) == (int(rows[-1] - rows[0]) + 1) * (int(cols[-1] - cols[0]) + 1):
            side = max(int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1)
            if side > 1:
                return "box", {"side": side, "missing": missing}
        return "inpaint", {"missing": missing}
    if isinstance(A, SuperResolution):
        return "sr", {"factor": A.factor}
    if isinstance(A, MRI):
        if not A.symmetric:
            raise InvpriorError("the conditional models need an MRI mask that is conjugate-symmetric (MRI.cartesian)")
        return "mri", {"acceleration": A.acceleration}
    raise InvpriorError(
        f"the conditional models were trained for inpainting (random pixels or a box), super-resolution and "
        f"Cartesian MRI, not for {A.name}"
    )


def family_check(A, sigma: float, family: dict[str, Any]) -> list[str]:
    """What lies outside the trained ``family`` (empty: in family); operator types outside are errors."""
    task, params = describe(A)
    trained = family.get(task)
    if trained is None:
        raise InvpriorError(f"this model was trained for {', '.join(k for k in family if k != 'sigma')}, not {task}")
    out = []
    for k, (lo, hi) in trained.items():
        v = params[k]
        if not lo - 1e-9 <= v <= hi + 1e-9:
            out.append(f"{task} {k} {v:.3g} (trained: {lo:g} to {hi:g})")
    lo, hi = family["sigma"]
    if not lo - 1e-9 <= sigma <= hi + 1e-9:
        out.append(f"noise sigma {sigma:.3g} (trained: {lo:g} to {hi:g})")
    return out


def _maps(A, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from ..operators import MRI, Inpainting, SuperResolution

    c, h, w = A.in_shape
    ones = torch.ones((1, c, h, w), dtype=like.dtype, device=like.device)
    if isinstance(A, Inpainting):
        return A.mask.to(like).reshape(1, c, h, w), ones
    if isinstance(A, SuperResolution):
        return ones / A.factor**2, ones
    if isinstance(A, MRI):
        k = torch.fft.fftshift(A.mask.to(like.dtype), dim=(-2, -1)).to(like.device).expand(1, c, h, w)
        return ones / A.acceleration, k
    describe(A)  # raises
    raise AssertionError


def condition(A, y: torch.Tensor) -> torch.Tensor:
    """The three condition maps ``(B, 3, H, W)`` of a measurement (single-channel images)."""
    describe(A)
    with torch.no_grad():
        xp = A.pinv(y)
    xp = xp.real if xp.is_complex() else xp
    m1, m2 = _maps(A, xp)
    b = xp.shape[0]
    return torch.cat([2 * xp - 1, m1.expand(b, -1, -1, -1), m2.expand(b, -1, -1, -1)], dim=1).float()


def _draw_operator(task: str, shape: tuple[int, int, int], g: torch.Generator, family: dict[str, Any]):
    from ..operators import MRI, Inpainting, SuperResolution

    u = float(torch.rand((), generator=g))
    seed = int(torch.randint(0, 2**31 - 1, (), generator=g))
    if task == "inpaint":
        lo, hi = family["inpaint"]["missing"]
        return Inpainting.random(shape, lo + (hi - lo) * u, seed=seed)
    if task == "box":
        lo, hi = family["box"]["side"]
        side = int(lo + (hi - lo + 1) * u)
        side = min(side, hi)
        _, h, w = shape
        ci = int(torch.randint(side // 2, h - side + side // 2 + 1, (), generator=g))
        cj = int(torch.randint(side // 2, w - side + side // 2 + 1, (), generator=g))
        return Inpainting.box(shape, side, center=(ci, cj))
    if task == "sr":
        lo, hi = family["sr"]["factor"]
        return SuperResolution(shape, round(lo + (hi - lo) * u))
    if task == "mri":
        lo, hi = family["mri"]["acceleration"]
        return MRI.cartesian(shape, lo + (hi - lo) * u, seed=seed)
    raise ValueError(task)


def sample_family(
    x: torch.Tensor, g: torch.Generator, family: dict[str, Any] = FAMILY, tasks: tuple[str, ...] | None = None
) -> torch.Tensor:
    """Training conditions for a batch ``x`` in [0, 1]: one random operator of the family per image
    (task uniform over ``tasks``), a noisy measurement, and its ``condition`` maps ``(B, 3, H, W)``."""
    from ..operators import GaussianNoise

    tasks = tasks or tuple(k for k in TASK_NAMES if k in family)
    shape = tuple(x.shape[1:])
    out = []
    lo, hi = family["sigma"]
    for i in range(x.shape[0]):
        task = tasks[int(torch.randint(0, len(tasks), (), generator=g))]
        A = _draw_operator(task, shape, g, family)
        sigma = lo + (hi - lo) * float(torch.rand((), generator=g))
        y = GaussianNoise(sigma).sample(A(x[i : i + 1].double()), g)
        out.append(condition(A, y))
    return torch.cat(out)


class E2EUNet(nn.Module):
    """End-to-end reconstructor ``x̂ = A⁺y + F(A⁺y, maps)`` on [0, 1] images (see the module docstring)."""

    def __init__(self, net: DiffusionUNet, family: dict[str, Any] | None = None):
        super().__init__()
        self.net = net
        self.family = family or FAMILY
        self.config = {"net": net.config, "family": self.family}

    def forward(self, cond: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        from .._device import run_on

        c = run_on(self, cond)
        zero = torch.zeros(c.shape[0], device=c.device, dtype=c.dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            f = self.net(c[:, :1], zero, c[:, 1:])
        return ((c[:, :1] + f.to(c.dtype) + 1) / 2).to(cond.device, cond.dtype)


class FlowUNet(nn.Module):
    """Velocity field ``v(x_t, t | cond)`` in [-1, 1] space on the path ``x_t = (1 - t) x0 + t ε``."""

    def __init__(self, net: DiffusionUNet, family: dict[str, Any] | None = None):
        super().__init__()
        self.net = net
        self.family = family if net.cond_channels else None
        self.config = {"net": net.config, **({"family": self.family} if self.family else {})}

    def forward(self, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                bf16: bool = False) -> torch.Tensor:  # fmt: skip
        from .._device import run_on

        x_in = run_on(self, xt)
        t = torch.as_tensor(t, dtype=x_in.dtype, device=x_in.device).flatten().expand(xt.shape[0])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            v = self.net(x_in, t, None if cond is None else run_on(self, cond))
        return v.to(xt.device, xt.dtype)

    def loss(self, x: torch.Tensor, g: torch.Generator, cond: torch.Tensor | None = None,
             bf16: bool = True) -> torch.Tensor:  # fmt: skip
        """Flow-matching loss ``|v(x_t, t) - (ε - x0)|²`` with ``t ~ U(0, 1)`` on [0, 1] images."""
        x0 = 2 * x - 1
        t = torch.rand(x.shape[0], generator=g)
        eps = torch.randn(x0.shape, generator=g)
        tt = t.view(-1, 1, 1, 1)
        xt = (1 - tt) * x0 + tt * eps
        return ((self(xt, t, cond, bf16=bf16) - (eps - x0)) ** 2).mean()

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, ...], steps: int, g: torch.Generator,
               cond: torch.Tensor | None = None, heun: bool = False) -> torch.Tensor:  # fmt: skip
        """``n`` draws by integrating ``dx/dt = v`` from ``t = 1`` to 0 (Euler or Heun), in [0, 1]."""
        x = torch.randn((n, *shape), generator=g)
        ts = torch.linspace(1.0, 0.0, steps + 1)
        for i in range(steps):
            t0, t1 = float(ts[i]), float(ts[i + 1])
            v = self(x, t0, cond)
            if heun and t1 > 0:
                xe = x + (t1 - t0) * v
                v = 0.5 * (v + self(xe, t1, cond))
            x = x + (t1 - t0) * v
        return (x + 1) / 2


class FlowDenoiser(nn.Module):
    """``D(x, σ)`` on [0, 1] images from an unconditional ``FlowUNet`` (exact change of variables).

    In [-1, 1] space ``x' = x0 + σ' ε`` with ``σ' = 2σ``; ``t = σ' / (1 + σ')``, ``x_t = (1 - t) x'``
    lies exactly on the flow's path and ``x̂0 = x_t - t v(x_t, t)``.
    """

    def __init__(self, flow: FlowUNet):
        super().__init__()
        self.flow = flow
        self.config = getattr(flow, "config", {})

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = 2 * torch.as_tensor(sigma, dtype=x.dtype, device=x.device).flatten().expand(x.shape[0])
        t = s / (1 + s)
        tt = t.view(-1, *([1] * (x.dim() - 1)))
        xt = (1 - tt) * (2 * x - 1)
        x0 = xt - tt * self.flow(xt, t)
        return (x0 + 1) / 2


def time_of_sigma(sigma: float) -> float:
    """The flow time ``t`` of a noise level ``σ`` in [0, 1] units (``σ' = 2σ``)."""
    s = 2 * sigma
    return s / (1 + s) if math.isfinite(s) else 1.0
