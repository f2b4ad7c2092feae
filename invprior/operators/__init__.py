"""Forward models ``A``, noise models and ``Problem``: everything about the measurement."""

from . import kernels  # parametric blur kernels, differentiable in their parameters
from .base import SVD, LinearOperator, Operator, conjugate_gradient
from .basic import Gradient, Identity, Inpainting, Matrix
from .fourier import MRI, Blur, CompressedSensing, SuperResolution, hartley, hartley2
from .noise import GaussianNoise, Noise, PoissonNoise
from .nonlinear import BeerLambert, PhaseRetrieval
from .problem import Problem, simulate
from .tomography import CT

__all__ = [
    "CT",
    "MRI",
    "SVD",
    "BeerLambert",
    "Blur",
    "CompressedSensing",
    "GaussianNoise",
    "Gradient",
    "Identity",
    "Inpainting",
    "LinearOperator",
    "Matrix",
    "Noise",
    "Operator",
    "PhaseRetrieval",
    "PoissonNoise",
    "Problem",
    "SuperResolution",
    "conjugate_gradient",
    "hartley",
    "hartley2",
    "kernels",
    "simulate",
]
