"""Posterior samplers."""

from .diffusion import ald, daps, ddnm, ddrm, diffpir, dps, mm, pigdm, reddiff
from .exact import exact
from .langevin import myula, pnp_ula, ula

__all__ = [
    "ald",
    "daps",
    "ddnm",
    "ddrm",
    "diffpir",
    "dps",
    "exact",
    "mm",
    "myula",
    "pigdm",
    "pnp_ula",
    "reddiff",
    "ula",
]
