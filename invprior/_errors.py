"""The library's exceptions, importable without torch (the command line starts fast)."""

from __future__ import annotations

__all__ = ["InvpriorError", "NonFiniteResultError"]


class InvpriorError(ValueError):
    """Raised for bad input at a public boundary (shape, range, NaN, unmet method needs)."""


class NonFiniteResultError(InvpriorError):
    """A method produced NaN or Inf values (the message names the method and, where known, the step)."""
