"""Solvers: plain functions ``method(problem, prior, *, ..., seed) -> Result``, and their registry."""

from .map import tikhonov
from .registry import AutoWeightWarning, Method, NonFiniteResultError, TrustWarning, get, methods, register, solve
from .sample import exact

__all__ = [
    "AutoWeightWarning",
    "Method",
    "NonFiniteResultError",
    "TrustWarning",
    "exact",
    "get",
    "methods",
    "register",
    "solve",
    "tikhonov",
]
