"""Side by side with deepinv (``invprior bench classical``, only where deepinv is installed).

The same problems as the classical benchmark's (Gaussian deblurring and 70% random inpainting of
camera and coins at 128², noise as in ``make_case``), the same ``x`` and the same noisy ``y``, and the
same objective in both libraries,

    ½||A x - y||² / sigma² + (w / sigma) R(x)     (Tikhonov: ½||A x - y||² / sigma² + w/2 ||x||²)

with the validation-tuned weight ``w`` of ``regulariser_default`` / ``tikhonov_default``. Before
timing, both objectives are evaluated at two points and their differences compared (ours includes the
normal likelihood's constant, deepinv's does not): the ``objective match`` column, the relative
mismatch, checks that operators, data term and regulariser are the same functions. deepinv's operators
are its own (``BlurFFT`` with our kernel, ``Inpainting`` with our mask), checked equal to ours. The
wavelet rows are not the same objective: deepinv's wavelets (ptwt) pad (``mode="zero"``, its default;
ptwt has no periodisation), ours are periodised and orthogonal; the column says how far apart they are.

Each library runs at its defaults: ours stop on their criterion; deepinv's run its default 100
iterations (``early_stop=False``), with the step sizes a user would set from the problem (``1/L`` for
FISTA; ADMM's penalty and PDHG's step ratio as ours start them, so both iterate the same algorithm).
deepinv is never required: it imports torchvision, which this project does not depend on.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import torch
from tqdm import tqdm

from .. import data
from ..operators import simulate
from ..priors import TV, Tikhonov, WaveletL1
from ..solvers import solve
from ..solvers._common import data_lipschitz, objective
from . import metrics
from .cases import make_case, regulariser_default, tikhonov_default

__all__ = ["available", "deepinv_table", "report"]

PROBLEMS = (("camera", "deblur"), ("camera", "inpaint"), ("coins", "deblur"), ("coins", "inpaint"))
METHODS = ("TV (FISTA)", "TV (ADMM)", "TV (PDHG)", "Tikhonov", "wavelet (FISTA)")


def available() -> bool:
    """Whether ``import deepinv`` can work here (it needs torchvision too)."""
    return importlib.util.find_spec("deepinv") is not None and importlib.util.find_spec("torchvision") is not None


def _physics(A, case: str, shape):
    import deepinv as dinv

    img = tuple(shape[1:])
    if case == "deblur":
        k = A.kernel.to(torch.float32)
        return dinv.physics.BlurFFT(img_size=img, filter=k.reshape(1, 1, *k.shape[-2:]))
    if case == "inpaint":
        return dinv.physics.Inpainting(img_size=img, mask=A.mask.reshape(1, *img).to(torch.float32))
    raise ValueError(f"no deepinv operator for {case!r}")


def _y_image(A, case: str, y: torch.Tensor) -> torch.Tensor:
    """Our measurement in deepinv's layout: the observed pixels in place, zeros elsewhere (inpainting)."""
    return A.T(y) if case == "inpaint" else y


def _ours(problem, method: str, case: str, sigma: float):
    w_tv, w_wav = regulariser_default(case, "tv"), regulariser_default(case, "wavelet")
    if method == "Tikhonov":
        return Tikhonov(tikhonov_default(case, "identity"), kind="identity"), "tikhonov"
    if method == "wavelet (FISTA)":
        return WaveletL1(w_wav), "fista"
    return TV(w_tv), {"TV (FISTA)": "fista", "TV (ADMM)": "admm", "TV (PDHG)": "pdhg"}[method]


def _deepinv_solver(method: str, problem, prior, physics, sigma: float):
    """A callable ``y -> x`` running deepinv's algorithm on the same objective, at its defaults."""
    import deepinv as dinv

    fid = dinv.optim.data_fidelity.L2(sigma=sigma)
    if method == "Tikhonov":
        gamma = 1.0 / (prior.weight * sigma**2)
        return lambda y: physics.prox_l2(torch.zeros_like(physics.A_adjoint(y)), y, gamma)
    lam = prior.for_noise(sigma).w
    L = data_lipschitz(problem)
    if method in ("wavelet (FISTA)", "TV (FISTA)"):
        g = _deepinv_prior(method, prior, problem.x_shape)
        return dinv.optim.FISTA(data_fidelity=fid, prior=g, lambda_reg=lam, stepsize=1.0 / L)
    if method == "TV (ADMM)":
        rho = 0.1 * L  # our default penalty, which ours keeps fixed
        return dinv.optim.ADMM(data_fidelity=fid, prior=dinv.optim.TVPrior(), lambda_reg=lam, stepsize=1.0 / rho)
    if method == "TV (PDHG)":  # dualise TV only: K = nabla, G = ||.||_{2,1}, data term by its prox (as ours)
        nabla = dinv.models.TVDenoiser.nabla
        nabla_t = dinv.models.TVDenoiser.nabla_adjoint
        L2 = 8.0
        tau = 0.99 * (1.0 / max(lam, 1e-12) ** 2 / L2) ** 0.5

        def init(y, physics):  # primal A^T y, dual zero (on nabla's shape, which deepinv cannot guess)
            x0 = physics.A_adjoint(y)
            return x0, x0.clone(), torch.zeros_like(nabla(x0))

        return dinv.optim.PDCP(K=nabla, K_adjoint=nabla_t, data_fidelity=fid, custom_init=init,
                               prior=dinv.optim.prior.L12Prior(l2_axis=-1), lambda_reg=lam, stepsize=tau,
                               stepsize_dual=0.99 / (tau * L2), g_first=True)  # fmt: skip
    raise ValueError(method)


def _deepinv_objective(method: str, x4, y, physics, prior, sigma: float) -> float:
    import deepinv as dinv

    fid = dinv.optim.data_fidelity.L2(sigma=sigma)
    d = float(fid(x4, y, physics).sum())
    if method == "Tikhonov":
        return d + 0.5 * prior.weight * float((x4**2).sum())
    g = _deepinv_prior(method, prior, tuple(x4.shape[1:]))
    return d + prior.for_noise(sigma).w * float(g.fn(x4).sum())


def _deepinv_prior(method: str, prior, shape):
    """deepinv's regulariser for ours: TV, or wavelets with our wavelet and levels (deepinv's default
    mode "zero": ptwt has no periodisation)."""
    import deepinv as dinv

    if method == "wavelet (FISTA)":
        return dinv.optim.WaveletPrior(level=prior.transform(shape).levels, wv=prior.wavelet)
    return dinv.optim.TVPrior()


def _timed(fn, repeats: int):
    """``fn()`` and its best time over ``repeats`` runs (one run only when it takes over 10 s)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn()
        best = min(best, time.perf_counter() - t0)
        if best > 10.0:
            break
    return out, best


def deepinv_table(size: int = 128, quick: bool = False, methods=METHODS) -> list[dict]:
    """One row per (image, problem, method): PSNR and time of each library and the time ratio
    (deepinv / ours; > 1: ours is faster). Times are the best of two runs (one with ``quick`` or over 10 s)."""
    import deepinv as dinv

    repeats = 1 if quick else 2
    problems = PROBLEMS[:2] if quick else PROBLEMS
    rows = []
    for img, case in tqdm(problems, desc="bench classical: deepinv side by side"):
        x = data.image(img, size)
        A, sigma, desc = make_case(case, x.shape)
        problem = simulate(A, x, sigma, seed=0)
        physics = _physics(A, case, x.shape)
        x4 = x.reshape(1, *x.shape[-3:])
        if float((physics.A(x4) - _y_image(A, case, A(x)).reshape(x4.shape)).abs().max()) > 1e-5:
            raise RuntimeError(f"deepinv's operator differs from ours on {desc}")
        y = _y_image(A, case, problem.y).reshape(x4.shape).to(torch.float32)
        g = torch.Generator().manual_seed(1)
        probes = [(x + s * torch.randn(x.shape, generator=g)).clamp(0, 1) for s in (0.05, 0.1)]
        for method in methods:
            prior, ours_method = _ours(problem, method, case, sigma)
            # objectives up to a constant (ours is the full -log p(y|x), normalisation included): compare
            # their differences between two points
            d_ours = [objective(problem, prior.for_noise(sigma), q) for q in probes]
            d_dinv = [_deepinv_objective(method, q.reshape(x4.shape), y, physics, prior, sigma) for q in probes]
            match = abs((d_ours[1] - d_ours[0]) - (d_dinv[1] - d_dinv[0])) / abs(d_ours[1] - d_ours[0])
            r, t_ours = _timed(lambda p=problem, prior=prior, m=ours_method: solve(p, prior, method=m), repeats)
            model = _deepinv_solver(method, problem, prior, physics, sigma)
            if isinstance(model, dinv.optim.BaseOptim):
                xd, t_dinv = _timed(lambda f=model, y=y, ph=physics: f(y, ph), repeats)
            else:
                xd, t_dinv = _timed(lambda f=model, y=y: f(y), repeats)
            p_ours, p_dinv = metrics.psnr(r.mean, x), metrics.psnr(xd.reshape(x.shape).to(x.dtype), x)
            rows.append({
                "image": img, "problem": desc, "method": method,
                "objective match": f"{match:.1e}",
                "ours PSNR": p_ours, "ours iterations": r.diagnostics.iterations, "ours time s": t_ours,
                "deepinv PSNR": p_dinv, "deepinv time s": t_dinv,
                "PSNR diff": p_ours - p_dinv, "time ratio": t_dinv / t_ours,
            })  # fmt: skip
    return rows


def report(rows: list[dict], size: int) -> list[str]:
    """The Markdown section: the table and, per method, the median time ratio and the PSNR differences."""
    from .._table import markdown_table

    summary = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        ratios = sorted(r["time ratio"] for r in rs)
        diffs = [r["PSNR diff"] for r in rs]
        summary.append({"method": method, "problems": len(rs), "median time ratio": statistics.median(ratios),
                        "min time ratio": ratios[0], "max time ratio": ratios[-1],
                        "PSNR diff min": min(diffs), "PSNR diff max": max(diffs)})  # fmt: skip
    return [
        f"## Side by side with deepinv ({size}², same x, y and objective)",
        "",
        "Each library at its defaults (ours: until the stopping criterion; deepinv: its 100 iterations). "
        "Time ratio = deepinv's time / ours (> 1: ours is faster); PSNR diff = ours − deepinv, dB. Times are "
        "the best of two runs (one for runs over 10 s), in one process, on the threads the command was given.",
        "",
        markdown_table(summary),
        markdown_table(rows),
    ]
