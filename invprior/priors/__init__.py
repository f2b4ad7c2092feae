"""Priors: regularisers (``value``/``prox``/``grad``), denoisers ``D(x, sigma)``, generative models."""

from ..data.gmm import GaussianMixture
from .conditional import ConditionalModel
from .denoisers import (
    BM3DDenoiser,
    Denoiser,
    LearnedDenoiser,
    LowRankDenoiser,
    NLMDenoiser,
    TVDenoiser,
    WaveletDenoiser,
)
from .diffusion import Diffusion
from .generative import Flow, LatentGenerator
from .latent_diffusion import LatentDiffusion
from .regularisers import DCTL1, TV, NuclearNorm, Regulariser, Tikhonov, WaveletL1

__all__ = [
    "DCTL1",
    "TV",
    "BM3DDenoiser",
    "ConditionalModel",
    "Denoiser",
    "Diffusion",
    "Flow",
    "GaussianMixture",
    "LatentDiffusion",
    "LatentGenerator",
    "LearnedDenoiser",
    "LowRankDenoiser",
    "NLMDenoiser",
    "NuclearNorm",
    "Regulariser",
    "TVDenoiser",
    "Tikhonov",
    "WaveletDenoiser",
    "WaveletL1",
]
