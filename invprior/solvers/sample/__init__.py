"""Posterior samplers."""

from .exact import exact
from .langevin import myula, pnp_ula, ula

__all__ = ["exact", "myula", "pnp_ula", "ula"]
