"""The trust layer: is a reconstruction supported by the data, typical for the prior, honestly uncertain?

Realism is not truth: a sample can look like the training data and still contradict the
measurement, or fit the measurement with detail the prior finds atypical. ``trust`` judges a
``Result`` on both, per sample:

- **data fidelity**: the reduced χ² of each sample under the noise model, its p-value
  (upper tail of χ² with the measurement's real degrees of freedom), and a map of normalised
  residuals ``(y - A x̂) / σ`` where the operator allows one (image-shaped measurements as they are,
  inpainting scattered back to the image, MRI as |residual| on the k-space grid);
- **prior plausibility** from the model's own density where one exists (``plausibility``): a
  flow's exact ``log p``, a Gaussian mixture's exact ``log p``, the probability-flow ODE
  log-likelihood of a diffusion or flow-matching prior, a VAE's latent log density plus its
  reconstruction term; reported against the same quantity on test images, as a percentile;
- **flags**, each with its numbers: data misfit, atypical for the prior, uncertainty too narrow
  (when a ``Calibration`` fitted on held-out problems of the same kind is given).

Thresholds (``FLAG_CHI2``, ``FLAG_P``, ``FLAG_PERCENTILE``, ``FLAG_NARROW``) are module constants; a
per-sample condition raises a flag when it holds for more than ``FLAG_SHARE`` of the samples (with
64 exact posterior draws, one draw in the 1% tail is expected, not a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import torch

from .._checks import InvpriorError, make_generator

__all__ = [
    "FLAG_CHI2", "FLAG_NARROW", "FLAG_P", "FLAG_PERCENTILE", "FLAG_SHARE", "Flag", "Trust", "data_fidelity",
    "ode_log_likelihood", "plausibility", "reference_plausibility", "residual_map", "trust",
]  # fmt: skip

FLAG_CHI2 = 1.5  # reduced chi2 above this *and* p below FLAG_P: "not supported by the data"
FLAG_P = 1e-3
FLAG_PERCENTILE = 1.0  # plausibility below this percentile of test images: "atypical for the prior"
FLAG_SHARE = 0.1  # a flag needs more than this share of the samples (a point estimate: itself)
FLAG_NARROW = 2.0  # held-out errors need intervals this many times wider than the std: "too narrow"


@dataclass
class Flag:
    """One warning about one batch element: ``kind`` (data_misfit, atypical, too_narrow), the
    sentence, and the numbers behind it."""

    kind: str
    message: str
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass
class Trust:
    """Per-sample data fit and prior plausibility of a ``Result``, and the flags they raise.

    ``chi2``, ``p_value``: ``(n_samples, B)``. ``residual``: ``(B, ...)`` normalised residual map of
    the mean (``None`` with ``residual_note`` when the operator has no natural map).
    ``plausibility``, ``percentile``: ``(n, B)`` (``None`` with ``plausibility_note`` when not computed).
    ``flags[b]``: the flags of batch element ``b``.
    """

    chi2: torch.Tensor
    p_value: torch.Tensor
    dof: int
    residual: torch.Tensor | None = None
    residual_note: str = ""
    plausibility: torch.Tensor | None = None
    percentile: torch.Tensor | None = None
    plausibility_note: str = "not computed (ip.eval.trust(result, problem, prior, plausibility=True))"
    flags: list[list[Flag]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chi2_per_sample": self.chi2.tolist(), "p_value_per_sample": self.p_value.tolist(), "dof": self.dof,
            "plausibility": None if self.plausibility is None else self.plausibility.tolist(),
            "plausibility_percentile": None if self.percentile is None else self.percentile.tolist(),
            "plausibility_note": self.plausibility_note,
            "flags": [[{"kind": f.kind, "message": f.message, **f.numbers} for f in fl] for fl in self.flags],
        }  # fmt: skip
        return out

    @property
    def n_flags(self) -> int:
        return sum(len(f) for f in self.flags)

    def __repr__(self) -> str:
        kinds = sorted({f.kind for fl in self.flags for f in fl})
        return (
            f"Trust(chi2 median {float(self.chi2.median()):.3g}, dof {self.dof}, "
            f"plausibility {'yes' if self.plausibility is not None else 'no'}, flags {kinds or 'none'})"
        )


def _p_upper(chi2_total: torch.Tensor, dof: int) -> torch.Tensor:
    """``P(χ²_dof ≥ value)`` (regularised upper incomplete gamma)."""
    return torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), chi2_total.double() / 2)


def data_fidelity(problem, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Reduced χ² ``(n, B)``, its upper-tail p-value and the degrees of freedom of one measurement."""
    if problem.sigma is None or problem.sigma <= 0:
        raise InvpriorError("chi2 p-values need Gaussian noise with sigma > 0")
    n, B = samples.shape[:2]
    with torch.no_grad():
        flat = samples.reshape(n * B, *samples.shape[2:]).to(problem.dtype)
        y = problem.y.repeat(n, *([1] * (problem.y.dim() - 1)))
        z = problem.operator(flat)
        r = (y - z).abs() ** 2 if y.is_complex() else (y - z) ** 2
        dof = problem.y[0].numel() * (2 if problem.y.is_complex() else 1)
        tot = r.reshape(n * B, -1).sum(1) / problem.sigma**2
    chi2 = (tot / dof).reshape(n, B)
    return chi2, _p_upper(tot, dof).reshape(n, B), dof


def residual_map(problem, x: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    """Normalised residuals ``(y - A x) / σ`` of ``x`` ``(B, ...)`` as a map, and what the map shows."""
    from ..operators import MRI, Inpainting

    A = problem.operator
    with torch.no_grad():
        r = (problem.y - A(x.to(problem.dtype))) / problem.sigma
    if isinstance(A, Inpainting):
        return A._adjoint(r), "image (unobserved pixels 0)"
    if isinstance(A, MRI):
        k = torch.zeros((r.shape[0], *A.in_shape), dtype=torch.float64)
        k.reshape(r.shape[0], -1)[:, A.mask.expand(A.in_shape).flatten().nonzero()[:, 0]] = r.abs().double()
        return torch.fft.fftshift(k, dim=(-2, -1)), "k-space |residual| (centred)"
    if len(A.out_shape) == 3 and not r.is_complex():
        return r, "measurement grid"
    return None, f"{A.name} has no image-shaped measurement"


# ----- prior plausibility ------------------------------------------------------------------------


def ode_log_likelihood(
    prior,
    x: torch.Tensor,
    steps: int = 32,
    probes: int = 1,
    exact_trace: bool | None = None,
    seed: int = 0,
    sigma_min: float | None = None,
) -> torch.Tensor:
    """``log p(x)`` (nats) of a ``Diffusion`` prior by its probability-flow ODE.

    Integrates ``dx/dσ = (x - D(x, σ)) / σ`` from ``σ_min`` to ``σ_max`` (Heun, log-spaced), with
    ``d log p / dσ = -div f``, ``div f = (d - tr ∂D/∂x) / σ``; at ``σ_max``,
    ``p ≈ N(0, σ_max² I)``. The trace is exact (one vector-Jacobian product per dimension) when
    ``exact_trace`` (default: ``d ≤ 64``), otherwise a Hutchinson estimate with ``probes``
    Rademacher vectors per step. This is the density of the prior smoothed at ``σ_min``
    (``sigma_min``, default the prior's own).
    """
    d = math.prod(x.shape[1:])
    exact = d <= 64 if exact_trace is None else exact_trace
    g = make_generator(seed, x.device)
    lo = prior.sigma_min if sigma_min is None else max(float(sigma_min), prior.sigma_min)
    sig = torch.exp(torch.linspace(math.log(lo), math.log(prior.sigma_max), steps + 1)).tolist()
    z = x.detach().double()
    delta = torch.zeros(x.shape[0], dtype=torch.float64)

    def f_div(z: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            den = prior.denoise(zg, s)
            if exact:
                tr = torch.zeros(z.shape[0], dtype=torch.float64)
                flat = den.reshape(z.shape[0], -1)
                for i in range(d):
                    (gi,) = torch.autograd.grad(flat[:, i].sum(), zg, retain_graph=i < d - 1)
                    tr = tr + gi.reshape(z.shape[0], -1)[:, i].double()
            else:
                tr = torch.zeros(z.shape[0], dtype=torch.float64)
                for j in range(probes):
                    e = (torch.randint(0, 2, z.shape, generator=g) * 2 - 1).to(den.dtype)
                    (gv,) = torch.autograd.grad(den, zg, grad_outputs=e, retain_graph=j < probes - 1)
                    tr = tr + (gv * e).reshape(z.shape[0], -1).sum(1).double()
                tr = tr / probes
        f = (z - den.detach().double()) / s
        return f, (d - tr) / s

    for s0, s1 in pairwise(sig):
        f0, div0 = f_div(z, s0)
        ze = z + (s1 - s0) * f0
        f1, div1 = f_div(ze, s1)
        z = z + (s1 - s0) * 0.5 * (f0 + f1)
        delta = delta + (s1 - s0) * 0.5 * (div0 + div1)
    sT = prior.sigma_max
    log_pT = -0.5 * (z.reshape(z.shape[0], -1) ** 2).sum(1) / sT**2 - d * math.log(sT * math.sqrt(2 * math.pi))
    return log_pT + delta


def _density_kind(prior) -> str | None:
    from ..data.gmm import GaussianMixture
    from ..priors.diffusion import Diffusion
    from ..priors.generative import Flow, LatentGenerator

    if isinstance(prior, GaussianMixture):
        return "exact log p (Gaussian mixture)"
    if isinstance(prior, Flow):
        return "exact log p (normalizing flow)"
    if isinstance(prior, Diffusion):
        return "probability-flow ODE log-likelihood" + (" (flow matching)" if hasattr(prior, "flow") else "")
    if isinstance(prior, LatentGenerator) and prior.has_encoder and prior.decoder_std is not None:
        return "VAE: log N(E(x); 0, I) + log N(x; G(E(x)), std²)"
    return None


def plausibility(prior, x: torch.Tensor, *, steps: int = 32, seed: int = 0,
                 sigma_eval: float | None = None) -> tuple[torch.Tensor, str]:  # fmt: skip
    """``log p(x)`` per image (nats) under ``prior``'s own density, and which density it is.

    For a diffusion or flow-matching prior, ``sigma_eval`` is the noise level at which the smoothed
    density is evaluated (default: the prior's ``sigma_min``). Near 0.001 the density mostly measures
    pixel-level statistics: measured on diffusion-shapes, e2e-shapes' estimates of shapes test images
    fall at the 0-2nd percentile of test images at 0.001 and at the 2nd-12th at 0.01 (docs/trust.md).

    A prior without a density (a regulariser, a denoiser, a GAN, a conditional model) is an error
    that says so: no number is made up for it.
    """
    from ..data.gmm import GaussianMixture
    from ..priors.diffusion import Diffusion
    from ..priors.generative import Flow

    kind = _density_kind(prior)
    if kind is None:
        name = getattr(prior, "name", type(prior).__name__)
        raise InvpriorError(
            f"{name} ({type(prior).__name__}) has no density to judge plausibility with; use a flow, a diffusion "
            "or flow-matching prior, a VAE or a Gaussian mixture"
        )
    with torch.no_grad():
        if isinstance(prior, GaussianMixture):
            return prior.log_prob(x.double()).reshape(-1), kind
        if isinstance(prior, Flow):
            return prior.log_prob(x.float().clamp(0, 1)).double().reshape(-1), kind
    if isinstance(prior, Diffusion):
        if sigma_eval is not None:
            kind += f" at sigma {max(float(sigma_eval), prior.sigma_min):g}"
        return ode_log_likelihood(prior, x, steps=steps, seed=seed, sigma_min=sigma_eval), kind
    with torch.no_grad():  # VAE
        z = prior.encode(x.float())
        rec = prior(z)
        std = torch.as_tensor(prior.decoder_std).to(rec)
        d = math.prod(x.shape[1:])
        lz = -0.5 * (z.reshape(z.shape[0], -1) ** 2).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)
        lx = (-0.5 * ((x.float() - rec) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).reshape(len(x), -1)
        return (lz + lx.sum(1)).double(), kind + f" ({d} pixels)"


_REFERENCE: dict[tuple, torch.Tensor] = {}


def reference_plausibility(prior, images: torch.Tensor | None = None, n: int = 64, steps: int = 32,
                           sigma_eval: float | None = None) -> torch.Tensor:  # fmt: skip
    """The plausibility of ``n`` test images (default: the test split of the prior's training data),
    sorted; cached per prior and setting for the session."""
    name = getattr(prior, "name", type(prior).__name__)
    from ..data.gmm import GaussianMixture

    if images is None and isinstance(prior, GaussianMixture):
        key0: tuple = ("gmm", id(prior), n)
        if key0 not in _REFERENCE:  # exact draws from the mixture stand in for test data
            _REFERENCE[key0] = plausibility(prior, prior.sample(max(n, 256), torch.Generator().manual_seed(0)))[0]
        return _REFERENCE[key0].sort().values
    if images is None:
        data = (getattr(prior, "info", None) or {}).get("data")
        if data not in ("shapes", "digits"):
            raise InvpriorError(
                f"{name}: no test split is known for it; give reference images (a few dozen typical ones)"
            )
        from ..data import dataset

        images = dataset(data, "test")[-n:]  # the last n: benchmarks use the first test images
        key: tuple = (name, data, n, steps, sigma_eval)
    else:
        key = (name, id(images), len(images), steps, sigma_eval)
    if key not in _REFERENCE:
        vals, _ = plausibility(prior, images.to(torch.float64), steps=steps, sigma_eval=sigma_eval)
        _REFERENCE[key] = vals.sort().values
    return _REFERENCE[key]


def _percentile(values: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return 100.0 * torch.searchsorted(ref, values.double().contiguous(), right=True).double() / len(ref)


# ----- the report --------------------------------------------------------------------------------


def trust(
    result,
    problem,
    prior=None,
    *,
    plausibility_of: str | None = None,
    calibration=None,
    reference: torch.Tensor | None = None,
    steps: int = 32,
    sigma_eval: float | None = None,
) -> Trust:
    """The trust report of ``result`` (a solve of ``problem``); see the module docstring.

    ``plausibility_of``: ``"samples"``, ``"mean"`` or ``None`` (default: samples when the prior has a
    cheap exact density, nothing otherwise; the ODE likelihood of a diffusion prior costs about
    ``2 steps`` network passes and backward passes, so ask for it). Asking for it with a prior that
    has no density is an error. ``calibration``: an ``ip.eval.Calibration`` of this method on
    problems of the same kind; it enables the "uncertainty too narrow" flag. ``sigma_eval``: the
    noise level of a diffusion prior's smoothed density (see ``plausibility``).
    """
    from ..data.gmm import GaussianMixture
    from ..priors.generative import Flow

    chi2, p, dof = data_fidelity(problem, result.samples)
    res, note = residual_map(problem, result.mean)
    out = Trust(chi2.double(), p.double(), dof, res, note)
    ref = None
    auto = plausibility_of is None and isinstance(prior, (Flow, GaussianMixture))
    if auto:
        plausibility_of = "samples"
    if plausibility_of is not None:
        if plausibility_of not in ("samples", "mean"):
            raise InvpriorError(f"plausibility_of must be 'samples', 'mean' or None, got {plausibility_of!r}")
        if prior is None:
            raise InvpriorError("plausibility needs the prior whose density judges it")
        x = result.samples if plausibility_of == "samples" else result.mean[None]
        vals, kind = plausibility(prior, x.reshape(-1, *x.shape[2:]), steps=steps, sigma_eval=sigma_eval)
        out.plausibility = vals.reshape(x.shape[:2])
        try:
            ref = reference_plausibility(prior, reference, steps=steps, sigma_eval=sigma_eval)
        except InvpriorError as e:
            if not auto:
                raise
            out.plausibility_note = f"{kind}; no percentile: {e}"
            ref = None
    if plausibility_of is not None and ref is not None:
        out.percentile = _percentile(out.plausibility.flatten(), ref).reshape(x.shape[:2])
        out.plausibility_note = f"{kind}; percentile among {len(ref)} test images; of the {plausibility_of}"
    elif prior is not None and _density_kind(prior) is None:
        out.plausibility_note = f"{getattr(prior, 'name', type(prior).__name__)} has no density"
    B = result.samples.shape[1]
    scale = calibration.scale(0.9) if calibration is not None else None
    for b in range(B):
        fl: list[Flag] = []
        c, pv = chi2[:, b], p[:, b]
        bad = (c > FLAG_CHI2) & (pv < FLAG_P)
        if float(bad.double().mean()) > FLAG_SHARE:
            fl.append(Flag(
                "data_misfit",
                f"plausible but not supported by the data: {int(bad.sum())} of {len(c)} samples have chi2 far above 1 "
                f"(median {float(c.median()):.3g}, p {float(pv.median()):.2g})",
                {"chi2_median": float(c.median()), "p_median": float(pv.median()), "n_bad": int(bad.sum())},
            ))  # fmt: skip
        if out.percentile is not None:
            pc = out.percentile[:, b]
            low = pc < FLAG_PERCENTILE
            if float(low.double().mean()) > FLAG_SHARE:
                fl.append(Flag(
                    "atypical",
                    f"fits the data but atypical for the prior: {int(low.sum())} of {len(pc)} below the "
                    f"{FLAG_PERCENTILE:g}st percentile of test images (median percentile {float(pc.median()):.3g})",
                    {"percentile_median": float(pc.median()), "n_low": int(low.sum())},
                ))  # fmt: skip
        if scale is not None and result.std is not None and scale > FLAG_NARROW:
            fl.append(Flag(
                "too_narrow",
                f"uncertainty too narrow: on held-out problems of this kind the 90% intervals had to be widened "
                f"{scale:.3g}x to cover (coverage before: {calibration.before(0.9):.2f})",
                {"scale90": scale, "coverage90_before": calibration.before(0.9)},
            ))  # fmt: skip
        out.flags.append(fl)
    return out
