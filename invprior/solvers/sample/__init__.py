"""Posterior samplers."""

from .exact import exact

__all__ = ["exact"]
