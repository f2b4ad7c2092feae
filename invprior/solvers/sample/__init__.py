"""Posterior samplers."""

from .blind import blind_dps, blind_reddiff
from .conditional import cfm, e2e, pnp_flow
from .diffusion import ald, daps, ddnm, ddrm, diffpir, dps, mm, pigdm, reddiff
from .exact import exact
from .langevin import myula, pnp_ula, ula
from .latent import psld, resample
from .smc import fps_smc, mcgdiff, tds

__all__ = [
    "ald",
    "blind_dps",
    "blind_reddiff",
    "cfm",
    "daps",
    "ddnm",
    "ddrm",
    "diffpir",
    "dps",
    "e2e",
    "exact",
    "fps_smc",
    "mcgdiff",
    "mm",
    "myula",
    "pigdm",
    "pnp_flow",
    "pnp_ula",
    "psld",
    "reddiff",
    "resample",
    "tds",
    "ula",
]
