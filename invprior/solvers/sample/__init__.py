"""Posterior samplers."""

from .diffusion import ald, ddrm, diffpir, dps, pigdm
from .exact import exact
from .langevin import myula, pnp_ula, ula

__all__ = ["ald", "ddrm", "diffpir", "dps", "exact", "myula", "pigdm", "pnp_ula", "ula"]
