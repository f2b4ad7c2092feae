"""Operator algebra: forward models ``A``, exact adjoints, composition, SVD views, data proxes.

Shapes: an operator maps ``(batch, *in_shape)`` real tensors to ``(batch, *out_shape)`` tensors
(complex when ``complex_output``). Constant buffers (masks, kernels) are stored in float64 on the
CPU and cast to the input's dtype and device on use, so every operator follows its input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import InvpriorError, check_shape

__all__ = [
    "SVD",
    "LinearOperator",
    "Operator",
    "complex_dtype",
    "conjugate_gradient",
    "real_dtype",
]


def looks_like_shape(v) -> bool:
    """A tuple, list or ``torch.Size`` of 1-4 whole numbers (not a tensor, an array or a number)."""
    if not isinstance(v, (tuple, list)) or not 1 <= len(v) <= 4:
        return False
    return all((not isinstance(s, bool) and isinstance(s, int)) or getattr(s, "is_integer", lambda: False)() for s in v)


def shape_first(where: str, shape, value, value_name: str):
    """``(shape, value)`` of a constructor whose shape comes first, also accepting the order of
    invprior 0.1, ``(value, shape)``, with a ``DeprecationWarning`` (the types tell them apart)."""
    if not looks_like_shape(shape) and looks_like_shape(value):
        warn_old_order(where, value_name)
        return value, shape
    return shape, value


def warn_old_order(where: str, value_name: str, stacklevel: int = 4) -> None:
    import warnings

    warnings.warn(
        f"{where}({value_name}, shape) is the old argument order: the shape comes first, {where}(shape, {value_name})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def mask_after_shape(where: str, shape, mask, name: str = "mask"):
    """``(shape, mask)`` of an operator defined by a mask or matrix: ``Op(shape, mask)``, ``Op(mask=m)``
    or ``Op(m)`` (the shape is the mask's own), and the old order ``Op(m, shape)`` with a warning."""
    if mask is None:
        if shape is None or looks_like_shape(shape):
            raise InvpriorError(f"{where} needs a {name}: {where}(shape, {name}) or {where}({name}=...)")
        return None, shape  # Op(m): the one argument is the mask
    if shape is not None and not looks_like_shape(shape) and looks_like_shape(mask):
        warn_old_order(where, name)
        return mask, shape
    return shape, mask


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def _bdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real inner product per batch element: Re <a, b> over all but the first dimension."""
    if a.is_complex() or b.is_complex():
        return (a.conj() * b).real.flatten(1).sum(1)
    return (a * b).flatten(1).sum(1)


def _bview(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    tol: float = 1e-6,
    max_iter: int = 500,
    history: list[float] | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, int]:
    """Solve ``M x = b`` for a symmetric positive definite ``M`` given as ``apply``, per batch element.

    Stops when every batch element has ``||M x - b|| <= tol ||b||`` or after ``max_iter`` steps.
    Returns the solution and the number of iterations run. ``history`` (if given) receives the
    largest relative residual of the batch at each iteration; ``callback(it)`` runs after each.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = _bdot(r, r)
    b_norm2 = _bdot(b, b).clamp_min(torch.finfo(b.dtype).tiny)
    it = 0
    for it in range(1, max_iter + 1):
        if history is not None:
            history.append(float((rs / b_norm2).max().sqrt()))
        if bool((rs <= tol**2 * b_norm2).all()):
            return x, it - 1
        Mp = apply(p)
        pMp = _bdot(p, Mp)
        alpha = torch.where(pMp > 0, rs / pMp.clamp_min(torch.finfo(b.dtype).tiny), torch.zeros_like(rs))
        x = x + _bview(alpha, x) * p
        r = r - _bview(alpha, r) * Mp
        rs_new = _bdot(r, r)
        beta = torch.where(rs > 0, rs_new / rs.clamp_min(torch.finfo(b.dtype).tiny), torch.zeros_like(rs))
        p = r + _bview(beta, p) * p
        rs = rs_new
        if callback is not None:
            callback(it)
    return x, it


@dataclass(frozen=True)
class SVD:
    """A singular value view ``A = U diag(s) V^T`` of a linear operator.

    - ``Vt(x)``: image ``(b, *in_shape)`` -> real coefficients ``(b, n)``, ``n = prod(in_shape)``,
      an orthogonal transform;
    - ``V(c)``: its inverse;
    - ``s``: ``(n,)`` float64 singular values, zero on the null space of ``A``;
    - ``Ut(y)``: measurement -> ``(b, n)``, entries where ``s == 0`` are zero;
    - ``U(c)``: ``(b, n)`` -> measurement, reads only the entries where ``s > 0``.

    so that ``A x = U(s * Vt(x))`` and ``A^T y = V(s * Ut(y))``; ``Ut(U(c)) = c`` where ``s > 0``.
    This is the interface DDRM, DDNM and PiGDM use (Kawar et al. 2022, arXiv:2201.11793).
    """

    Vt: Callable[[torch.Tensor], torch.Tensor]
    V: Callable[[torch.Tensor], torch.Tensor]
    Ut: Callable[[torch.Tensor], torch.Tensor]
    U: Callable[[torch.Tensor], torch.Tensor]
    s: torch.Tensor

    def singular_values(self, like: torch.Tensor) -> torch.Tensor:
        return self.s.to(device=like.device, dtype=real_dtype(like.dtype))


def _counted(f: Callable) -> Callable:
    """Wrap ``_forward`` / ``_adjoint`` so each application is counted on the operator."""

    def wrapper(self, *args, **kwargs):
        self.evals += 1
        return f(self, *args, **kwargs)

    wrapper._counted = True  # type: ignore[attr-defined]
    wrapper.__doc__ = f.__doc__
    wrapper.__name__ = f.__name__
    return wrapper


class Operator:
    """A forward model ``A: (batch, *in_shape) -> (batch, *out_shape)``, possibly nonlinear.

    Subclasses implement ``_forward``. Jacobian products come from autograd: ``jvp(x, v)`` and
    ``vjp(x, w)``. Operators never mutate their inputs and follow the input's dtype and device.
    """

    linear: bool = False
    evals: int = 0  # applications of A or A^T so far (solvers report the difference)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for nm in ("_forward", "_adjoint"):
            f = cls.__dict__.get(nm)
            if f is not None and not getattr(f, "_counted", False):
                setattr(cls, nm, _counted(f))

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], complex_output: bool = False):
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        self.complex_output = bool(complex_output)
        self._cache: dict[tuple, torch.Tensor] = {}

    # ----- contract ---------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, self.in_shape, f"the input of {self.name}")
        if x.is_complex():
            raise InvpriorError(f"{self.name} takes real inputs, got a complex tensor")
        return self._forward(x)

    forward = __call__

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def m(self) -> int:
        """Number of real degrees of freedom in a measurement (complex entries count twice)."""
        return math.prod(self.out_shape) * (2 if self.complex_output else 1)

    @property
    def n(self) -> int:
        return math.prod(self.in_shape)

    def __repr__(self) -> str:
        return f"{self.name}(in_shape={self.in_shape}, out_shape={self.out_shape})"

    # ----- buffers follow the input -----------------------------------------------------------
    def _like(self, key: str, buf: torch.Tensor, like: torch.Tensor, complex_: bool = False) -> torch.Tensor:
        """Cast a constant float64/complex128/bool buffer to the dtype and device of ``like``."""
        if buf.dtype == torch.bool:
            dtype = torch.bool
        elif complex_ or buf.is_complex():
            dtype = complex_dtype(like.dtype)
        else:
            dtype = real_dtype(like.dtype)
        k = (key, dtype, like.device)
        t = self._cache.get(k)
        if t is None:
            t = buf.to(device=like.device, dtype=dtype)
            self._cache[k] = t
        return t

    # ----- derivatives (autograd by default) --------------------------------------------------
    def jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Jacobian-vector product ``J_A(x) v``."""
        check_shape(x, self.in_shape, f"the input of {self.name}")
        try:
            return torch.func.jvp(self._forward, (x,), (v,))[1]
        except NotImplementedError:
            # some kernels (e.g. grid_sample) lack forward-mode AD: J v = d/du <J^T u, v> (double VJP)
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                out = self._forward(xg)
                u = torch.zeros_like(out, requires_grad=True)
                (g,) = torch.autograd.grad(out, xg, grad_outputs=u, create_graph=True)
                (jv,) = torch.autograd.grad(g, u, grad_outputs=v)
            return jv.detach()

    def vjp(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Vector-Jacobian product ``J_A(x)^T w`` (real inner product, also for complex outputs)."""
        check_shape(x, self.in_shape, f"the input of {self.name}")
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            out = self._forward(xg)
            (g,) = torch.autograd.grad(out, xg, grad_outputs=w)
        return g

    # ----- algebra ----------------------------------------------------------------------------
    def __matmul__(self, other: Operator) -> Operator:
        if not isinstance(other, Operator):
            return NotImplemented
        if other.out_shape != self.in_shape:
            raise InvpriorError(
                f"cannot compose {self.name} (input {self.in_shape}) after {other.name} (output {other.out_shape})"
            )
        if other.complex_output:
            raise InvpriorError(f"cannot compose: {other.name} has complex outputs and {self.name} takes real inputs")
        if self.linear and other.linear:
            return _LinearComposed(self, other)  # type: ignore[arg-type]
        return _Composed(self, other)


class _Composed(Operator):
    def __init__(self, outer: Operator, inner: Operator):
        super().__init__(inner.in_shape, outer.out_shape, outer.complex_output)
        self.outer, self.inner = outer, inner

    @property
    def name(self) -> str:
        return f"{self.outer.name}@{self.inner.name}"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer._forward(self.inner._forward(x))

    def jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.outer.jvp(self.inner(x), self.inner.jvp(x, v))

    def vjp(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.inner.vjp(x, self.outer.vjp(self.inner(x), w))


class LinearOperator(Operator):
    """A linear forward model with an exact adjoint ``A.T``.

    The adjoint defaults to autograd (exact: the transpose of what ``_forward`` computes); subclasses
    give closed forms. ``pinv`` and ``prox_data`` come in closed form from ``svd()`` when it exists,
    and ``prox_data`` falls back to conjugate gradients otherwise.
    """

    linear = True
    pinv_exact: bool = True  # False when ``pinv`` is an approximate inverse (e.g. CT's FBP)

    # ----- adjoint ----------------------------------------------------------------------------
    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        dtype = real_dtype(y.dtype)
        with torch.enable_grad():
            x0 = torch.zeros((y.shape[0], *self.in_shape), dtype=dtype, device=y.device, requires_grad=True)
            out = self._forward(x0)
            (g,) = torch.autograd.grad(out, x0, grad_outputs=y.to(out.dtype))
        return g

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``A^T y`` for the real inner product ``<a, b> = Re sum(conj(a) b)``."""
        check_shape(y, self.out_shape, f"the measurement given to {self.name}.T")
        return self._adjoint(y)

    @property
    def T(self) -> LinearOperator:
        return _Adjoint(self)

    def jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self(v)

    def vjp(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.adjoint(w)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^T A x``."""
        return self._adjoint(self._forward(x))

    # ----- algebra ----------------------------------------------------------------------------
    def __mul__(self, c: float) -> LinearOperator:
        return _Scaled(self, float(c))

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return _Scaled(self, -1.0)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Sum(self, other, 1.0)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Sum(self, other, -1.0)

    def norm(
        self, *, max_iter: int = 200, tol: float = 1e-7, seed: int = 0, dtype: torch.dtype = torch.float64
    ) -> float:
        """Spectral norm ``||A||_2``: closed form from the SVD view when there is one, else power
        iteration on ``A^T A`` (cached per operator and settings)."""
        key = ("norm", max_iter, tol, seed, dtype)
        if key in self._cache:
            return float(self._cache[key])
        svd = self.svd()
        val = float(svd.s.max()) if svd is not None else self._power_norm(max_iter, tol, seed, dtype)
        self._cache[key] = torch.tensor(val, dtype=torch.float64)
        return val

    def _power_norm(self, max_iter: int, tol: float, seed: int, dtype: torch.dtype) -> float:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((1, *self.in_shape), generator=g, dtype=dtype)
        x = x / x.norm()
        lam = 0.0
        for _ in range(max_iter):
            z = self.normal(x)
            lam_new = float(z.norm())
            if lam_new == 0.0:
                return 0.0
            x = z / lam_new
            if abs(lam_new - lam) <= tol * lam_new:
                lam = lam_new
                break
            lam = lam_new
        return math.sqrt(lam)

    # ----- SVD, pseudo-inverse, data prox -----------------------------------------------------
    def svd(self) -> SVD | None:
        """The SVD view of ``A`` where it is cheap, else ``None``."""
        return None

    @property
    def has_svd(self) -> bool:
        return self.svd() is not None

    @property
    def has_pinv(self) -> bool:
        return self.has_svd

    def pinv(self, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
        """Moore-Penrose pseudo-inverse ``A^+ y``; singular values ``<= rcond * max(s)`` count as zero.

        ``rcond`` defaults to ``1000 * eps`` of the dtype.
        """
        check_shape(y, self.out_shape, f"the measurement given to {self.name}.pinv")
        svd = self.svd()
        if svd is None:
            raise InvpriorError(f"{self.name} has no cheap pseudo-inverse; use prox_data or a solver")
        s = svd.singular_values(y)
        rcond = 1000 * torch.finfo(s.dtype).eps if rcond is None else rcond
        keep = s > rcond * s.max()
        inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        return svd.V(inv * svd.Ut(y))

    def prox_data(
        self, z: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor, *, tol: float = 1e-7, max_iter: int = 500
    ) -> torch.Tensor:
        """``argmin_x ½||A x - y||² + rho/2 ||x - z||²`` = ``(A^T A + rho I)^{-1}(A^T y + rho z)``.

        Closed form through the SVD (or a subclass's FFT/mask formula), conjugate gradients otherwise.
        ``rho`` may be a float or a ``(batch,)`` tensor.
        """
        check_shape(z, self.in_shape, f"z given to {self.name}.prox_data")
        check_shape(y, self.out_shape, f"y given to {self.name}.prox_data")
        rho_t = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        if bool((rho_t <= 0).any()):
            raise InvpriorError("prox_data needs rho > 0")
        svd = self.svd()
        if svd is not None:
            s = svd.singular_values(z)
            r = rho_t.reshape(-1, 1) if rho_t.dim() else rho_t
            c = (s * svd.Ut(y) + r * svd.Vt(z)) / (s * s + r)
            return svd.V(c)
        return self._prox_data_cg(z, y, rho_t, tol=tol, max_iter=max_iter)

    @property
    def closed_prox_data(self) -> bool:
        """True when ``prox_data`` needs no iterations (an SVD view or a subclass's closed form)."""
        return self.has_svd or type(self).prox_data is not LinearOperator.prox_data

    def _prox_data_cg(self, z, y, rho_t, *, tol: float, max_iter: int) -> torch.Tensor:
        r = _bview(rho_t, z) if rho_t.dim() else rho_t
        b = self._adjoint(y) + r * z
        x, _ = conjugate_gradient(lambda v: self.normal(v) + r * v, b, z, tol=tol, max_iter=max_iter)
        return x

    # ----- Fourier-diagonal operators (Identity, Blur) ---------------------------------------
    def fourier_symbol(self, like: torch.Tensor) -> torch.Tensor | None:
        """``K`` with ``A = F^H diag(K) F`` over the last two axes (real-FFT layout), or ``None``."""
        return None

    def capabilities(self) -> dict[str, bool]:
        return {"linear": True, "svd": self.has_svd, "pinv": self.has_pinv, "prox_data": True}


class _Adjoint(LinearOperator):
    def __init__(self, A: LinearOperator):
        super().__init__(A.out_shape, A.in_shape, complex_output=False)
        self.A = A

    @property
    def name(self) -> str:
        return f"{self.A.name}.T"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # accepts complex measurements
        check_shape(x, self.in_shape, f"the measurement given to {self.name}")
        return self.A._adjoint(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A._adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.A._forward(y)

    @property
    def T(self) -> LinearOperator:
        return self.A


class _LinearComposed(_Composed, LinearOperator):
    jvp = LinearOperator.jvp
    vjp = LinearOperator.vjp

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner._adjoint(self.outer._adjoint(y))


class _Scaled(LinearOperator):
    def __init__(self, A: LinearOperator, c: float):
        super().__init__(A.in_shape, A.out_shape, A.complex_output)
        self.A, self.c = A, c

    @property
    def name(self) -> str:
        return f"{self.c:g}*{self.A.name}"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * self.A._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.c * self.A._adjoint(y)

    def svd(self) -> SVD | None:
        svd = self.A.svd()
        if svd is None or self.c == 0:
            return None
        sign = 1.0 if self.c > 0 else -1.0
        return SVD(
            Vt=svd.Vt,
            V=svd.V,
            Ut=lambda y: sign * svd.Ut(y),
            U=lambda c: sign * svd.U(c),
            s=abs(self.c) * svd.s,
        )


class _Sum(LinearOperator):
    def __init__(self, A: LinearOperator, B: LinearOperator, sign: float):
        if A.in_shape != B.in_shape or A.out_shape != B.out_shape or A.complex_output != B.complex_output:
            raise InvpriorError(f"cannot add {A.name} and {B.name}: their shapes differ")
        super().__init__(A.in_shape, A.out_shape, A.complex_output)
        self.A, self.B, self.sign = A, B, sign

    @property
    def name(self) -> str:
        return f"({self.A.name}{'+' if self.sign > 0 else '-'}{self.B.name})"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A._forward(x) + self.sign * self.B._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.A._adjoint(y) + self.sign * self.B._adjoint(y)
