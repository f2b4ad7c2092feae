"""Input checks shared by every public boundary: one clear sentence, before any work."""

from __future__ import annotations

import math
import os

import torch

from ._errors import InvpriorError, NonFiniteResultError

__all__ = [
    "InvpriorError",
    "NonFiniteResultError",
    "available_memory",
    "check_dtype",
    "check_finite",
    "check_image_range",
    "check_memory",
    "check_shape",
    "make_generator",
    "normalize_image_shape",
]


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
    """Accept (H, W), (C, H, W) or (B, C, H, W) and return (C, H, W) (positive sizes that fit in memory)."""
    try:
        shape = tuple(_whole(s) for s in shape)
    except (TypeError, ValueError):
        raise InvpriorError(f"an image shape is a tuple of whole numbers, got {shape!r}") from None
    if len(shape) == 2:
        out = (1, *shape)
    elif len(shape) == 3:
        out = shape
    elif len(shape) == 4:
        out = shape[1:]
    else:
        raise InvpriorError(f"an image shape must be (H, W), (C, H, W) or (B, C, H, W), got {shape}")
    if min(out) < 1:
        raise InvpriorError(f"an image shape needs sizes >= 1, got {shape}")
    check_memory(8 * math.prod(out), f"an image of shape {out}", "use a smaller image")
    return out  # type: ignore[return-value]


def _whole(v) -> int:
    if isinstance(v, bool) or int(v) != v:
        raise ValueError(v)
    return int(v)


_LOW_PRECISION = (torch.float16, torch.bfloat16, torch.complex32)


def check_dtype(t: torch.Tensor, what: str) -> None:
    """invprior computes in float32/float64 (complex64/128 for complex data): half precision is refused."""
    if t.dtype in _LOW_PRECISION:
        raise InvpriorError(
            f"{what} has dtype {t.dtype}; invprior computes in float32 or float64 (pass {what}.float()): "
            "half precision loses the accuracy that data terms and step sizes need"
        )
    if not (t.is_floating_point() or t.is_complex()):
        raise InvpriorError(f"{what} has dtype {t.dtype}; expected float32 or float64 (integer images: divide by 255)")


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux, else the physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse, before allocating, work whose estimated memory exceeds what the machine has."""
    avail = available_memory()
    if nbytes > avail:
        raise InvpriorError(
            f"{what} would need about {_fmt_bytes(nbytes)} of memory (an estimate) but {_fmt_bytes(avail)} "
            f"is available: {fix}"
        )


def make_generator(seed: int | torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator from a seed (None means seed 0: results are reproducible by default)."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g
