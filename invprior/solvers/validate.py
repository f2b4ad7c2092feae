"""One validation layer for solver options, run by ``ip.solve`` before any work.

Each check names the option and its valid range in one sentence. Options are recognised by their
name, so every method (and every method added later) gets the same rules: iteration counts are
whole numbers >= 1, ``burn_in < steps``, seeds are whole numbers, step sizes are finite and > 0,
``x0`` is a finite real tensor of the problem's shape, and the run's estimated memory fits.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from .._checks import InvpriorError, check_dtype, check_memory

__all__ = ["check_options"]

# whole-number options and their smallest valid value
_COUNTS = {
    "steps": 1, "n_samples": 1, "chains": 1, "burn_in": 0, "thin": 1, "restarts": 1, "inner": 1, "ode_steps": 1,
    "langevin_steps": 1, "cg_iter": 1, "max_iter": 1, "width": 1, "n_particles": 1, "chunk": 1, "every": 1, "iters": 1,
    "kernel_size": 3, "scales": 1,
    "opt_iters": 1, "outer": 1, "kernel_steps": 1,
}  # fmt: skip
_POSITIVE = {
    "lr", "step", "rho", "eps", "sigma_d", "sigma_start", "sigma_end", "step_size", "mu_start", "mu_ratio",
    "smoothing", "data_var", "gamma", "ratio", "alpha", "weight", "memory_budget", "dc_sigma_max", "kernel_lr",
    "init_width", "continuation", "floor",
}  # fmt: skip
_NON_NEGATIVE = {"tol", "lam", "zeta", "stop_chi2", "kappa", "glue", "kernel_zeta", "kernel_lam"}
_UNIT = {"eta", "eta_b", "ess_threshold"}
_MAX_SEED = 2**63 - 1


def _is_whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def check_options(method: str, family: str, problem, prior, options: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Raise ``InvpriorError`` naming the first bad option of ``method``; ``defaults`` fill the rest."""
    merged = {**defaults, **options}
    for k, v in merged.items():
        if v is None:
            continue
        if k in _COUNTS:
            if not _is_whole(v) or v < _COUNTS[k]:
                raise InvpriorError(f"{method}: {k} must be a whole number >= {_COUNTS[k]}, got {v!r}")
        elif k in _POSITIVE:
            if not _is_real(v) or v <= 0:
                raise InvpriorError(f"{method}: {k} must be a finite number > 0, got {v!r}")
        elif k in _NON_NEGATIVE:
            if not _is_real(v) or v < 0:
                raise InvpriorError(f"{method}: {k} must be a finite number >= 0, got {v!r}")
        elif k in _UNIT:
            if not _is_real(v) or not 0 <= v <= 1:
                raise InvpriorError(f"{method}: {k} must be a number in [0, 1], got {v!r}")
        elif k == "seed":
            if not isinstance(v, torch.Generator) and (not _is_whole(v) or not 0 <= v <= _MAX_SEED):
                raise InvpriorError(f"{method}: seed must be a whole number in [0, 2**63 - 1] or a torch.Generator, "
                                    f"got {v!r}")  # fmt: skip
        elif k in ("progress", "return_particles"):
            if not isinstance(v, bool):
                raise InvpriorError(f"{method}: {k} must be True or False, got {v!r}")
        elif k == "x0":
            _check_x0(method, problem, v)
    if "burn_in" in merged and "steps" in merged and merged["burn_in"] >= merged["steps"]:
        raise InvpriorError(
            f"{method}: burn_in ({merged['burn_in']}) must be smaller than steps ({merged['steps']}), "
            "or no sample is kept"
        )
    w = getattr(prior, "weight", None)
    if w is not None and w != "auto" and (not _is_real(w) or w <= 0):
        raise InvpriorError(f"{method}: the prior's weight must be a finite number > 0 or 'auto', got {w!r}")
    _check_size(method, family, problem, prior, merged)


def _check_x0(method: str, problem, x0: Any) -> None:
    if not isinstance(x0, torch.Tensor):
        raise InvpriorError(f"{method}: x0 must be a torch.Tensor of shape {problem.x_shape}, got {type(x0).__name__}")
    if tuple(x0.shape) != tuple(problem.x_shape):
        raise InvpriorError(f"{method}: x0 has shape {tuple(x0.shape)}, expected {tuple(problem.x_shape)}")
    if x0.is_complex():
        raise InvpriorError(f"{method}: x0 must be real, got a complex tensor")
    check_dtype(x0, "x0")
    if not bool(torch.isfinite(x0).all()):
        raise InvpriorError(f"{method}: x0 contains NaN or Inf values; give a finite starting point")


def _check_size(method: str, family: str, problem, prior, opts: dict[str, Any]) -> None:
    """A coarse estimate of the run's peak memory, checked before anything is allocated: the
    parallel copies (samples, chains, restarts) of the iterate times the working copies a step
    keeps (more for network priors, whose activations dominate), plus per-step bookkeeping."""
    copies = max(int(opts.get(k) or 1) for k in ("n_samples", "chains", "restarts", "n_particles"))
    per_copy = math.prod(problem.x_shape) * problem.y.element_size()
    working = 64 if isinstance(prior, torch.nn.Module) or hasattr(prior, "nfe") else 16
    steps = int(opts.get("steps") or opts.get("max_iter") or 1)
    work, schedule = copies * per_copy * working, 64 * steps  # a schedule / trace entry per step
    if "n_particles" in opts:  # SMC: runs are chunked to fit memory_budget (or chunk runs at a time)
        runs = int(opts.get("chunk") or opts.get("n_samples") or 1)
        work = runs * int(opts["n_particles"]) * per_copy * working
        if not opts.get("chunk"):
            work = min(
                work, 2 * float(opts.get("memory_budget") or work) + int(opts["n_particles"]) * per_copy * working
            )
    knobs = [k for k in ("n_particles", "n_samples", "chains", "restarts") if (opts.get(k) or 1) > 1]
    knob = "steps" if schedule > work or not knobs else knobs[0]
    where = f"{method} with {knob}={opts.get(knob)} on {tuple(problem.x_shape)}"
    check_memory(work + schedule, where, f"lower {knob}")
