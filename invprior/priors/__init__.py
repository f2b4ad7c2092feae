"""Priors: regularisers (``value``/``grad``/``prox``), denoisers ``D(x, sigma)``, generative models."""

from ..data.gmm import GaussianMixture
from .regularisers import Tikhonov

__all__ = ["GaussianMixture", "Tikhonov"]
