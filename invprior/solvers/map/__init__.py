"""MAP (optimisation) solvers."""

from .tikhonov import tikhonov

__all__ = ["tikhonov"]
