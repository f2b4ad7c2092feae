"""Device and dtype placement of learned models.

The rule everywhere in invprior: results follow the *input* tensor's device and dtype. Operators
keep their constant buffers in float64 on the CPU and cast them on use; a learned network runs
where its weights are (``zoo.load(name, device=..., dtype=...)``), its inputs are moved and cast
to it, and its outputs come back on the input's device and in the input's dtype.
"""

from __future__ import annotations

import itertools

import torch

from ._checks import InvpriorError

__all__ = ["check_device", "check_dtype", "module_placement", "place", "run_on"]


def check_device(device) -> torch.device | None:
    """``device`` as a ``torch.device`` that exists on this machine (``None`` stays ``None``)."""
    if device is None:
        return None
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise InvpriorError(f"{device!r} is not a device torch knows ({e}); use e.g. 'cpu' or 'cuda:0'") from None
    if d.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InvpriorError(f"device {str(d)!r} does not exist: torch sees no CUDA GPU here; use 'cpu'")
        if d.index is not None and d.index >= n:
            raise InvpriorError(f"device {str(d)!r} does not exist: torch sees {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    elif d.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InvpriorError(f"device {str(d)!r} does not exist: this torch has no usable Apple MPS backend")
    elif d.type not in ("cpu", "cuda", "mps", "meta"):
        try:
            torch.empty(0, device=d)
        except (RuntimeError, AssertionError) as e:
            raise InvpriorError(f"device {str(d)!r} is not usable here: {e}") from None
    return d


def check_dtype(dtype) -> torch.dtype | None:
    """A floating dtype (``None`` stays ``None``); strings like ``"float64"`` are accepted."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvpriorError(f"dtype must be a floating torch dtype (float32, float64, bfloat16...), got {dtype!r}")
    return dtype


def place(module: torch.nn.Module, device=None, dtype=None) -> torch.nn.Module:
    """Move ``module`` to a checked device and dtype (in place, as ``nn.Module.to``); returns it."""
    d, t = check_device(device), check_dtype(dtype)
    if d is None and t is None:
        return module
    return module.to(device=d, dtype=t)


def module_placement(module, default_dtype: torch.dtype | None = torch.float32):
    """``(device, dtype)`` of a module's first parameter or buffer; ``(None, default_dtype)`` for a
    plain callable or a module without tensors."""
    if isinstance(module, torch.nn.Module):
        for p in itertools.chain(module.parameters(), module.buffers()):
            if p.is_floating_point():
                return p.device, p.dtype
    return None, default_dtype


def run_on(module, t: torch.Tensor, default_dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """``t`` moved and cast to where ``module`` computes."""
    dev, dt = module_placement(module, default_dtype)
    return t.to(device=dev if dev is not None else t.device, dtype=dt if dt is not None else t.dtype)
