"""Input checks shared by every public boundary: one clear sentence, before any work."""

from __future__ import annotations

import torch

__all__ = [
    "InvpriorError",
    "check_finite",
    "check_image_range",
    "check_shape",
    "make_generator",
    "normalize_image_shape",
]


class InvpriorError(ValueError):
    """Raised for bad input at a public boundary (shape, range, NaN, unmet method needs)."""


def check_shape(t: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    """Check that ``t`` is ``(batch, *expected)``."""
    if not isinstance(t, torch.Tensor):
        raise InvpriorError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != len(expected) + 1 or tuple(t.shape[1:]) != tuple(expected):
        raise InvpriorError(f"{what} has shape {tuple(t.shape)}, expected (batch, {', '.join(map(str, expected))})")


def check_finite(t: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise InvpriorError(f"{what} contains {n_bad} NaN or Inf value(s); clean the data first")


def check_image_range(x: torch.Tensor, what: str, tol: float = 1e-6) -> None:
    """Images at public boundaries live in [0, 1]."""
    if x.is_complex():
        raise InvpriorError(f"{what} must be a real image in [0, 1], got a complex tensor")
    check_finite(x, what)
    lo, hi = float(x.min()), float(x.max())
    if lo < -tol or hi > 1 + tol:
        raise InvpriorError(
            f"{what} has values in [{lo:.3g}, {hi:.3g}]; images must be in [0, 1] "
            "(divide uint8 data by 255, or rescale)"
        )


def normalize_image_shape(shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int]:
    """Accept (H, W), (C, H, W) or (B, C, H, W) and return (C, H, W)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 4:
        return shape[1:]  # type: ignore[return-value]
    raise InvpriorError(f"an image shape must be (H, W), (C, H, W) or (B, C, H, W), got {shape}")


def make_generator(seed: int | torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator from a seed (None means seed 0: results are reproducible by default)."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g
