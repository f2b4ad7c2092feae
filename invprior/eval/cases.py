"""Named measurement setups shared by the CLI, the demo, tuning scripts and benchmarks.

Each case builds an operator for an image shape and has a default Gaussian noise level. The
parameters are the usual ones of the literature (blur sigma 2 px, 70% missing pixels, x4 SR,
x4 MRI, 60-angle CT, 25% compressed sensing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from .._checks import InvpriorError
from ..operators import (
    CT,
    MRI,
    Blur,
    CompressedSensing,
    Identity,
    Inpainting,
    Operator,
    PhaseRetrieval,
    SuperResolution,
)

__all__ = ["CASES", "Case", "make_case", "regulariser_default", "tikhonov_default"]


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[..., Operator]
    noise: float
    params: dict[str, float]


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("denoise", "Gaussian denoising", lambda s: Identity(s), 0.1, {}),
        Case(
            "deblur",
            "Gaussian blur, sigma {blur_sigma} px",
            lambda s, blur_sigma: Blur.gaussian(s, blur_sigma),
            0.02,
            {"blur_sigma": 2.0},
        ),
        Case(
            "motion",
            "motion blur, {length} px at {angle} deg",
            lambda s, length, angle: Blur.motion(s, length, angle),
            0.02,
            {"length": 9.0, "angle": 30.0},
        ),
        Case(
            "inpaint",
            "random inpainting, {fraction:.0%} missing",
            lambda s, fraction: Inpainting.random(s, fraction, 0),
            0.01,
            {"fraction": 0.7},
        ),
        Case("box", "box inpainting, side {size:.0%}", lambda s, size: Inpainting.box(s, size), 0.01, {"size": 0.3}),
        Case(
            "sr",
            "super-resolution x{factor:.0f}",
            lambda s, factor: SuperResolution(s, int(factor)),
            0.01,
            {"factor": 4.0},
        ),
        Case(
            "mri",
            "Cartesian MRI x{acceleration:.0f}",
            lambda s, acceleration: MRI.cartesian(s, acceleration, 0),
            0.01,
            {"acceleration": 4.0},
        ),
        Case(
            "ct", "parallel-beam CT, {angles:.0f} angles", lambda s, angles: CT(s, int(angles)), 0.5, {"angles": 60.0}
        ),
        Case(
            "cs",
            "compressed sensing, m/n = {ratio:.0%}",
            lambda s, ratio: CompressedSensing(s, max(1, int(ratio * s[-1] * s[-2] * s[-3])), 0),
            0.01,
            {"ratio": 0.25},
        ),
        Case(
            "phase",
            "coded-diffraction phase retrieval, x{oversampling:.0f} oversampling",
            lambda s, oversampling: PhaseRetrieval(s, oversampling, 0),
            0.01,
            {"oversampling": 2.0},
        ),
    ]
}


def make_case(name: str, shape, **params: float) -> tuple[Operator, float, str]:
    """``(operator, default noise sigma, description)`` for the named case; ``params`` override."""
    if name not in CASES:
        raise InvpriorError(f"unknown operator {name!r}; choose one of: {', '.join(CASES)}")
    case = CASES[name]
    unknown = set(params) - set(case.params)
    if unknown:
        raise InvpriorError(f"{name} has no parameter(s) {sorted(unknown)}; it takes {sorted(case.params) or 'none'}")
    p = {**case.params, **{k: float(v) for k, v in params.items() if v is not None}}
    return case.build(tuple(shape), **p), case.noise, case.description.format(**p)


def tikhonov_default(case: str, kind: str) -> float:
    """The Tikhonov weight tuned on validation images by ``scripts/tune_tikhonov.py``."""
    table = json.loads(resources.files("invprior.eval").joinpath("tikhonov_defaults.json").read_text())
    try:
        return float(table["weights"][case][kind])
    except KeyError:
        return float(table["fallback"][kind])


def regulariser_default(case: str, prior: str) -> float:
    """TV / wavelet-L1 weight for a case in their noise-relative units, tuned on validation images by
    ``scripts/tune_classical.py`` (its table holds absolute weights ``w`` at the case's noise level
    ``sigma``; the relative weight is ``w · sigma``). 1.0 for a case that was not tuned."""
    try:
        table = json.loads(resources.files("invprior.eval").joinpath("classical_defaults.json").read_text())
        return float(table["weights"][case][prior]) * CASES[case].noise
    except (FileNotFoundError, KeyError):
        return 1.0
