"""``Problem``: a measurement model (operator + noise) with its data ``y``; ``simulate`` makes one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import InvpriorError, check_dtype, check_finite, check_image_range, check_shape, make_generator
from .base import LinearOperator, Operator, complex_dtype
from .noise import GaussianNoise, Noise

__all__ = ["Problem", "simulate"]


@dataclass(frozen=True, eq=False)
class Problem:
    """``y = A(x) + n``: the operator, the data and the noise model (and, for simulations, the truth).

    ``y`` has shape ``(batch, *operator.out_shape)``; a solver's iterate has shape ``x_shape``.
    ``noise``: a number (the Gaussian sigma, as in ``simulate``) or a ``Noise``; ``Problem(A, y, 0.02)``
    reconstructs measured data.
    """

    operator: Operator
    y: torch.Tensor
    noise: Noise | float
    truth: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.operator, Operator):
            raise InvpriorError(f"operator must be an invprior Operator, got {type(self.operator).__name__}")
        if isinstance(self.noise, (int, float)) and not isinstance(self.noise, bool):  # as in simulate
            object.__setattr__(self, "noise", GaussianNoise(float(self.noise)))
        if not isinstance(self.noise, Noise):
            got = type(self.noise).__name__
            raise InvpriorError(f"noise must be a Gaussian sigma (a number), GaussianNoise or PoissonNoise, got {got}")
        check_shape(self.y, self.operator.out_shape, f"y (the measurement of {self.operator.name})")
        if self.y.shape[0] == 0:
            raise InvpriorError("y is an empty batch (0 measurements); give at least one")
        check_dtype(self.y, "y")
        check_finite(self.y, "y")
        if self.y.is_complex() != self.operator.complex_output:
            kind = "complex" if self.operator.complex_output else "real"
            raise InvpriorError(f"{self.operator.name} produces {kind} measurements, but y is not {kind}")
        if self.truth is not None:
            check_shape(self.truth, self.operator.in_shape, "truth")
            if self.truth.shape[0] != self.y.shape[0]:
                raise InvpriorError(f"truth has batch {self.truth.shape[0]} but y has batch {self.y.shape[0]}")

    # ----- shapes ------------------------------------------------------------------------------
    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.y.shape[0], *self.operator.in_shape)

    @property
    def batch(self) -> int:
        return self.y.shape[0]

    @property
    def is_image(self) -> bool:
        return len(self.operator.in_shape) == 3

    @property
    def linear(self) -> bool:
        return isinstance(self.operator, LinearOperator)

    @property
    def sigma(self) -> float | None:
        """Gaussian noise standard deviation, or ``None`` for other noise models."""
        return self.noise.sigma if isinstance(self.noise, GaussianNoise) else None

    @property
    def dtype(self) -> torch.dtype:
        return self.y.real.dtype if self.y.is_complex() else self.y.dtype

    def to(self, device=None, dtype=None) -> Problem:
        """This problem with ``y`` (and the truth) on ``device`` and in the real ``dtype`` (complex data
        keep their complex kind). The operator follows its input, so nothing else moves."""
        from .._device import check_device
        from .._device import check_dtype as floating_dtype

        d, t = check_device(device), floating_dtype(dtype)

        def move(v: torch.Tensor | None) -> torch.Tensor | None:
            if v is None:
                return None
            if t is not None:
                v = v.to(complex_dtype(t)) if v.is_complex() else v.to(t)
            return v.to(d) if d is not None else v

        return Problem(self.operator, move(self.y), self.noise, move(self.truth))

    # ----- data term ---------------------------------------------------------------------------
    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """``-log p(y | x)`` per batch element."""
        return self.noise.nll(self.y, self.operator(x))

    def grad_nll(self, x: torch.Tensor) -> torch.Tensor:
        """``∇_x -log p(y | x) = J_A(x)^T ∇_z -log p(y | z)``."""
        z = self.operator(x)
        g = self.noise.grad_nll(self.y, z)
        return self.operator.vjp(x, g)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.y - self.operator(x)

    def chi2(self, x: torch.Tensor) -> torch.Tensor:
        """Data fit ``||y - A x||² / (m Var)`` per batch element: ≈ 1 at the noise level."""
        if isinstance(self.noise, GaussianNoise) and self.noise.sigma == 0:
            return torch.full((x.shape[0],), float("nan"), dtype=self.dtype, device=self.y.device)
        return self.noise.chi2(self.y, self.operator(x))

    def __repr__(self) -> str:
        return f"Problem({self.operator!r}, y{tuple(self.y.shape)}, {self.noise!r})"


def simulate(
    A: Operator,
    x: torch.Tensor,
    noise: Noise | float | None = None,
    seed: int | torch.Generator | None = 0,
    *,
    check_range: bool | None = None,
) -> Problem:
    """Make a ``Problem`` by measuring ``x``: ``y = noise(A(x))``; same seed, same ``y``.

    ``noise`` may be a ``Noise`` or a float (Gaussian sigma); ``None`` means noiseless.
    ``check_range`` (default: for images) insists that ``x`` lies in [0, 1].
    """
    if not isinstance(A, Operator):
        raise InvpriorError(f"A must be an invprior Operator, got {type(A).__name__}")
    check_shape(x, A.in_shape, f"x (the input of {A.name})")
    if x.shape[0] == 0:
        raise InvpriorError("x is an empty batch (0 images); give at least one")
    check_dtype(x, "x")
    if check_range is None:
        check_range = len(A.in_shape) == 3
    if check_range:
        check_image_range(x, "x")
    else:
        check_finite(x, "x")
    if noise is None:
        noise = GaussianNoise(0.0)
    elif isinstance(noise, (int, float)):
        noise = GaussianNoise(float(noise))
    g = make_generator(seed, x.device)
    with torch.no_grad():
        y = noise.sample(A(x), g)
    return Problem(A, y, noise, truth=x.detach().clone())
