"""Conditional models as "priors" of ``ip.solve``: an end-to-end reconstructor or a conditional
flow-matching model, with the operator family it was trained on (``models.conditional``)."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .._checks import InvpriorError
from ..models.conditional import OutOfFamilyWarning, condition, describe, family_check

__all__ = ["ConditionalModel"]


class ConditionalModel:
    """A network that maps a measurement (and its operator) to reconstructions.

    ``kind`` is ``"e2e"`` (one point estimate, ``x̂ = f(A⁺y, maps)``) or ``"cfm"`` (a velocity
    field ``v(x_t, t | A⁺y, maps)`` whose ODE draws posterior samples). ``family`` is the operator
    family it was trained on; ``check(A, sigma)`` refuses other operator types and lists what lies
    outside the family (operator shift).
    """

    def __init__(self, module: torch.nn.Module, kind: str, shape: tuple[int, ...], name: str,
                 info: dict[str, Any] | None = None):  # fmt: skip
        if kind not in ("e2e", "cfm"):
            raise InvpriorError(f"a ConditionalModel is an 'e2e' or 'cfm' model, got {kind!r}")
        self.module, self.kind, self.shape, self.name = module, kind, tuple(shape), name
        self.family: dict[str, Any] = module.family
        self.info = info or {}
        self.nfe = 0

    def __repr__(self) -> str:
        tasks = ", ".join(k for k in self.family if k != "sigma")
        return f"ConditionalModel({self.name!r}, {self.kind}, trained for {tasks}, shape={self.shape})"

    @property
    def tasks(self) -> list[str]:
        return [k for k in self.family if k != "sigma"]

    def check(self, A, sigma: float, strict: bool = False) -> list[str]:
        """What lies outside the trained family (warned, or an error with ``strict``); another
        operator type is always an error naming both tasks."""
        try:
            task, _ = describe(A)
        except InvpriorError:
            raise InvpriorError(
                f"{self.name} was trained for {', '.join(self.tasks)} (inpainting, box inpainting, super-resolution, "
                f"Cartesian MRI), not for {A.name}"
            ) from None
        if task not in self.family:
            raise InvpriorError(f"{self.name} was trained for {', '.join(self.tasks)}, not for {task} ({A.name})")
        if tuple(A.in_shape) != self.shape and (A.in_shape[0] != 1 or A.in_shape[1] % 4 or A.in_shape[2] % 4):
            raise InvpriorError(
                f"{self.name} takes single-channel images with sides divisible by 4, not {tuple(A.in_shape)}"
            )
        out = family_check(A, sigma, self.family)
        if out:
            msg = f"{self.name} runs outside the operator family it was trained on: {'; '.join(out)}"
            if strict:
                raise InvpriorError(msg + " (strict=True)")
            warnings.warn(msg + "; its output may not fit the data: check chi2", OutOfFamilyWarning, stacklevel=5)
        return out

    def condition(self, A, y: torch.Tensor) -> torch.Tensor:
        return condition(A, y)

    @torch.no_grad()
    def reconstruct(self, cond: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.module(cond)

    def velocity(self, xt: torch.Tensor, t: float, cond: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.module(xt, t, cond)
