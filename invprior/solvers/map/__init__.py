"""MAP (optimisation) solvers."""

from .classical import admm, fista, gradient_descent, hqs, pdhg, pgd
from .pnp import dpir, pnp_admm, pnp_hqs, red
from .tikhonov import tikhonov

__all__ = ["admm", "dpir", "fista", "gradient_descent", "hqs", "pdhg", "pgd", "pnp_admm", "pnp_hqs", "red", "tikhonov"]
