"""``invprior bench operators``: forward and adjoint time of every operator at several sizes."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch
from tqdm import tqdm

from ..operators import (
    CT,
    MRI,
    Blur,
    CompressedSensing,
    Identity,
    Inpainting,
    LinearOperator,
    Operator,
    PhaseRetrieval,
    SuperResolution,
)

__all__ = ["OPERATORS", "run"]

# name -> builder(shape); one line per operator
OPERATORS: dict[str, Callable[[tuple[int, int, int]], Operator]] = {
    "identity": lambda s: Identity(s),
    "inpainting (50% random)": lambda s: Inpainting.random(s, 0.5, 0),
    "blur (gaussian, sigma 2)": lambda s: Blur.gaussian(s, 2.0),
    "blur (motion, 15 px)": lambda s: Blur.motion(s, 15, 30.0),
    "super-resolution x4": lambda s: SuperResolution(s, 4),
    "MRI x4": lambda s: MRI.cartesian(s, 4, 0),
    "CS structured (m = n/4)": lambda s: CompressedSensing(s, s[1] * s[2] // 4, 0, kind="structured"),
    "CT (180 angles), grid_sample": lambda s: CT(s, 180, matrix=False),
    "CT (180 angles), sparse matrix": lambda s: CT(s, 180, matrix=True),
    "phase retrieval (x2)": lambda s: PhaseRetrieval(s, 2.0, 0),
}

# combinations skipped unless --full (each call would take tens of seconds here)
_SLOW = {("CT (180 angles), grid_sample", 1024, 16)}
# the sparse matrix at 1024² would hold ~6.7 GB (A and A^T): measured at 256² only, unless --full
_SLOW |= {("CT (180 angles), sparse matrix", 1024, b) for b in (1, 16)}


def _time(fn: Callable[[], object], repeats: int, budget: float) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    t_start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget:
            break
    return statistics.median(times)


def run(sizes=(256, 1024), batches=(1, 16), full: bool = False, repeats: int = 5, budget: float = 3.0) -> list[dict]:
    """Median wall time (ms) of ``A(x)`` and ``A.T(y)`` on float32 inputs, one row per case."""
    rows = []
    cases = [(name, n, b) for name in OPERATORS for n in sizes for b in batches]
    for name, n, b in tqdm(cases, desc="bench operators"):
        row: dict[str, object] = {"operator": name, "size": f"{n}x{n}", "batch": b}
        if (name, n, b) in _SLOW and not full:
            row.update({"forward ms": float("nan"), "adjoint ms": float("nan"), "note": "skipped (use --full)"})
            rows.append(row)
            continue
        A = OPERATORS[name]((1, n, n))
        x = torch.rand(b, 1, n, n)
        with torch.no_grad():
            t0 = time.perf_counter()
            y = A(x)
            if isinstance(A, CT) and A.matrix:  # the first call built (or reused) the cached matrix
                mats = A.system_matrix(x)
                mb = sum(t.numel() * t.element_size() for M in mats
                         for t in (M.values(), M.col_indices(), M.crow_indices())) / 2**20  # fmt: skip
                row["note"] = f"A and A^T {mb:.0f} MB; first call (build) {time.perf_counter() - t0:.1f} s"
            row["forward ms"] = 1e3 * _time(lambda A=A, x=x: A(x), repeats, budget)
            if isinstance(A, LinearOperator):
                row["adjoint ms"] = 1e3 * _time(lambda A=A, y=y: A.T(y), repeats, budget)
            else:
                row["adjoint ms"] = float("nan")
                row["note"] = "nonlinear (VJP by autograd)"
        row.setdefault("note", "")
        rows.append(row)
    return rows


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
