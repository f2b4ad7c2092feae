"""MAP (optimisation) solvers."""

from .blind_tv import blind_tv
from .classical import admm, fista, gradient_descent, hqs, pdhg, pgd
from .csgm_diffusion import csgm_diffusion
from .latent import csgm, dip, flow_map_x, flow_map_z, vae_map
from .pnp import dpir, pnp_admm, pnp_hqs, red
from .tikhonov import tikhonov

__all__ = [
    "admm", "blind_tv", "csgm", "csgm_diffusion", "dip", "dpir", "fista", "flow_map_x", "flow_map_z",
    "gradient_descent", "hqs", "pdhg", "pgd", "pnp_admm", "pnp_hqs", "red", "tikhonov", "vae_map",
]  # fmt: skip
