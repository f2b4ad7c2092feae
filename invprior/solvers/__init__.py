"""Solvers: plain functions ``method(problem, prior, *, ..., seed) -> Result``, and their registry."""

from .map import tikhonov
from .registry import Method, get, methods, register, solve
from .sample import exact

__all__ = ["Method", "exact", "get", "methods", "register", "solve", "tikhonov"]
