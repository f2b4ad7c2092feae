"""Posterior samplers."""

from .diffusion import ddrm, dps, pigdm
from .exact import exact
from .langevin import myula, pnp_ula, ula

__all__ = ["ddrm", "dps", "exact", "myula", "pigdm", "pnp_ula", "ula"]
