"""Posterior samplers."""

from .diffusion import ald, daps, ddnm, ddrm, diffpir, dps, mm, pigdm, reddiff
from .exact import exact
from .langevin import myula, pnp_ula, ula
from .smc import fps_smc, mcgdiff, tds

__all__ = [
    "ald",
    "daps",
    "ddnm",
    "ddrm",
    "diffpir",
    "dps",
    "exact",
    "fps_smc",
    "mcgdiff",
    "mm",
    "myula",
    "pigdm",
    "pnp_ula",
    "reddiff",
    "tds",
    "ula",
]
