"""The method registry: names -> plain solver functions, with what each needs, checked before work."""

from __future__ import annotations

import inspect
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .._checks import InvpriorError, NonFiniteResultError
from ..operators import GaussianNoise, LinearOperator, Problem
from ..result import Result
from .validate import check_options

__all__ = [
    "NEEDS",
    "AutoWeightWarning",
    "Method",
    "NonFiniteResultError",
    "TrustWarning",
    "get",
    "methods",
    "register",
    "solve",
]


class TrustWarning(UserWarning):
    """The trust layer flagged a result: a misfit to the data, or detail atypical for the prior."""


class AutoWeightWarning(UserWarning):
    """``weight="auto"`` ended at a bound of its search range without reaching chi2 = 1."""


def _check_result(name: str, result: Result) -> None:
    """A result with non-finite values is an error, never a returned NaN."""
    if bool(torch.isfinite(result.samples).all()):
        return
    trace = result.diagnostics.loss_trace
    bad = next((i for i, v in enumerate(trace) if not math.isfinite(v)), None)
    where = f" from step {bad + 1} of {len(trace)} on" if bad is not None else ""
    frac = float((~torch.isfinite(result.samples)).float().mean())
    raise NonFiniteResultError(
        f"{name} produced NaN or Inf values{where} ({frac:.0%} of the output); the step size may be too large "
        "for this problem, or the prior/operator returned non-finite values"
    )


def _op(problem: Problem) -> str:
    return problem.operator.name


def _need_linear(problem: Problem, prior) -> str | None:
    return None if isinstance(problem.operator, LinearOperator) else f"{_op(problem)} is nonlinear"


def _need_svd(problem: Problem, prior) -> str | None:
    op = problem.operator
    if not isinstance(op, LinearOperator):
        return f"{_op(problem)} is nonlinear"
    return None if op.has_svd else f"{_op(problem)} has none"


def _need_pinv(problem: Problem, prior) -> str | None:
    op = problem.operator
    if not isinstance(op, LinearOperator):
        return f"{_op(problem)} is nonlinear"
    return None if op.has_pinv else f"{_op(problem)} has none"


def _need_gaussian_noise(problem: Problem, prior) -> str | None:
    if not isinstance(problem.noise, GaussianNoise):
        return f"the noise is {type(problem.noise).__name__}"
    if problem.noise.sigma <= 0:
        return "the noise level is 0 (give a small sigma_y > 0)"
    return None


def _need_gaussian_mixture(problem: Problem, prior) -> str | None:
    from ..data.gmm import GaussianMixture

    if not isinstance(prior, GaussianMixture):
        return _prior_name(prior)
    if prior.shape != problem.operator.in_shape:
        return f"the mixture lives on {prior.shape} but {_op(problem)} takes {problem.operator.in_shape}"
    return None


def _need_tikhonov(problem: Problem, prior) -> str | None:
    from ..priors.regularisers import Tikhonov

    return None if prior is None or isinstance(prior, Tikhonov) else f"the prior is {type(prior).__name__}"


def _prior_name(prior) -> str:
    return "no prior was given" if prior is None else f"the prior is {type(prior).__name__}"


def _need_regulariser(problem: Problem, prior) -> str | None:
    return None if hasattr(prior, "prox") and hasattr(prior, "value") else _prior_name(prior)


def _need_smooth(problem: Problem, prior) -> str | None:
    from ..priors.diffusion import Diffusion

    if isinstance(prior, Diffusion):
        return (
            "a Diffusion prior has a score only for sigma > 0, not the log-density gradient these methods "
            "need (use a diffusion sampler: dps, pigdm, ddrm, ddnm, diffpir, mm, reddiff, daps, ald)"
        )
    if hasattr(prior, "grad") and getattr(prior, "smooth", False):
        return None
    if hasattr(prior, "score"):
        return None
    return _prior_name(prior) + " (not differentiable: use myula / pgd / fista)"


def _need_denoiser(problem: Problem, prior) -> str | None:
    if not hasattr(prior, "denoise"):
        return _prior_name(prior)
    if not problem.is_image and not hasattr(prior, "score"):
        return "the problem is not an image problem"
    return None


def _need_tv(problem: Problem, prior) -> str | None:
    from ..priors.regularisers import TV

    return None if isinstance(prior, TV) else _prior_name(prior)


def _need_diffusion(problem: Problem, prior) -> str | None:
    from ..priors.diffusion import Diffusion

    if not isinstance(prior, Diffusion):
        if type(prior).__name__ == "LatentDiffusion":
            return f"{prior.name} is a latent diffusion prior: use method psld or resample"
        return _prior_name(prior) + " (wrap a denoiser with ip.priors.Diffusion.from_denoiser)"
    if prior.shape != problem.operator.in_shape:
        return f"the diffusion prior makes {prior.shape} samples but {_op(problem)} takes {problem.operator.in_shape}"
    return None


def _need_latent_diffusion(problem: Problem, prior) -> str | None:
    from ..priors.latent_diffusion import LatentDiffusion

    if not isinstance(prior, LatentDiffusion):
        return _prior_name(prior) + " (a prior with a decoder; load one: ip.zoo.load('ldm-shapes'))"
    if prior.shape != problem.operator.in_shape:
        return f"its decoder makes {prior.shape} images but {_op(problem)} takes {problem.operator.in_shape}"
    return None


def _need_latent(problem: Problem, prior) -> str | None:
    from ..priors.generative import LatentGenerator

    if not isinstance(prior, LatentGenerator):
        return _prior_name(prior) + " (load a GAN or VAE: ip.zoo.load('gan-shapes'))"
    if prior.shape != problem.operator.in_shape:
        return f"the generator makes {prior.shape} images but {_op(problem)} takes {problem.operator.in_shape}"
    return None


def _need_flow(problem: Problem, prior) -> str | None:
    from ..priors.generative import Flow

    if not isinstance(prior, Flow):
        return _prior_name(prior) + " (load a flow: ip.zoo.load('flow-shapes'))"
    if prior.shape != problem.operator.in_shape:
        return f"the flow models {prior.shape} images but {_op(problem)} takes {problem.operator.in_shape}"
    return None


def _need_conditional(kind: str) -> Callable[[Problem, object], str | None]:
    def check(problem: Problem, prior) -> str | None:
        from ..priors.conditional import ConditionalModel

        hint = f" (load one: ip.zoo.load('{kind}-shapes'))"
        if not isinstance(prior, ConditionalModel):
            return _prior_name(prior) + hint
        if prior.kind != kind:
            return f"{prior.name} is a {prior.kind} model" + hint
        return None

    return check


def _need_blur(problem: Problem, prior) -> str | None:
    from ..operators import Blur

    if isinstance(problem.operator, Blur):
        return None
    return f"{_op(problem)} is not a blur (a blind method estimates its kernel)"


def _card_defaults(prior, method: str) -> dict:
    """Settings of ``method`` tuned for this prior, from its card's ``"sampler defaults"`` (zoo models)."""
    info = getattr(prior, "info", None)
    table = info.get("sampler defaults", {}) if isinstance(info, dict) else {}
    return dict(table.get(method, {})) if isinstance(table, dict) else {}


def _estimated_kernel_problem(problem: Problem, result) -> Problem | None:
    """A blind result's problem with its estimated kernel in place of the guessed one (one measurement)."""
    from ..operators import Blur

    if problem.batch != 1:
        return None
    k = result.diagnostics.extra["kernel"][0]
    return Problem(Blur(problem.operator.in_shape, k), problem.y, problem.noise, truth=problem.truth)


def _need_image(problem: Problem, prior) -> str | None:
    return None if problem.is_image else f"{_op(problem)} does not act on images"


# need -> (what the method needs, in words; the check returning what is missing or None)
NEEDS: dict[str, tuple[str, Callable[[Problem, object], str | None]]] = {
    "linear": ("a linear operator", _need_linear),
    "svd": ("an SVD", _need_svd),
    "pinv": ("a pseudo-inverse", _need_pinv),
    "gaussian_noise": ("Gaussian noise", _need_gaussian_noise),
    "gaussian_mixture": ("a GaussianMixture prior", _need_gaussian_mixture),
    "tikhonov": ("a Tikhonov prior", _need_tikhonov),
    "regulariser": ("a regulariser with a prox (TV, WaveletL1, DCTL1, NuclearNorm, Tikhonov)", _need_regulariser),
    "smooth": ("a differentiable prior (Tikhonov, GaussianMixture)", _need_smooth),
    "denoiser": ("a denoiser D(x, sigma)", _need_denoiser),
    "tv": ("a TV regulariser", _need_tv),
    "image": ("an image problem", _need_image),
    "blur": ("a Blur operator", _need_blur),
    "diffusion": ("a Diffusion prior", _need_diffusion),
    "latent": ("a LatentGenerator prior (GAN or VAE decoder)", _need_latent),
    "flow": ("a Flow prior", _need_flow),
    "latent_diffusion": ("a LatentDiffusion prior (a latent diffusion model and its decoder)", _need_latent_diffusion),
    "conditional_e2e": ("an end-to-end model (ConditionalModel, kind e2e)", _need_conditional("e2e")),
    "conditional_flow": ("a conditional flow-matching model (ConditionalModel, kind cfm)", _need_conditional("cfm")),
}


@dataclass(frozen=True)
class Method:
    """A registry row: ``name``, ``family`` ("map" or "sample"), ``needs``, ``reference`` and the function."""

    name: str
    family: str
    needs: tuple[str, ...]
    reference: str
    fn: Callable[..., Result]
    default_prior: Callable[[], object] | None = None

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.splitlines()[0] if doc else ""

    def options(self) -> dict[str, object]:
        """Keyword options and their defaults."""
        sig = inspect.signature(self.fn)
        return {k: p.default for k, p in sig.parameters.items() if p.kind == inspect.Parameter.KEYWORD_ONLY}

    def missing(self, problem: Problem, prior) -> list[str]:
        out = []
        for need in self.needs:
            what, check = NEEDS[need]
            why = check(problem, prior)
            if why is not None:
                out.append(f"{what}; {why}")
        return out

    def applies_to(self, problem: Problem, prior) -> bool:
        """Whether this method can run on ``problem`` with ``prior`` (a fully convolutional diffusion prior
        is first fitted to the image's shape, as ``solve`` does)."""
        if getattr(prior, "any_size", False) and len(problem.operator.in_shape) == 3:
            prior = prior.at_shape(problem.operator.in_shape)
        return not self.missing(problem, prior)


_REGISTRY: dict[str, Method] = {}


def register(
    name: str,
    *,
    family: str,
    needs: tuple[str, ...] = (),
    reference: str = "",
    default_prior: Callable[[], object] | None = None,
) -> Callable:
    """Decorator: add a solver function to the registry under ``name``.

    ``default_prior`` builds the prior used when ``ip.solve`` is given ``prior=None``.
    """
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"unknown needs {unknown}; known: {sorted(NEEDS)}")

    def deco(fn: Callable[..., Result]) -> Callable[..., Result]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        _REGISTRY[name] = Method(name, family, tuple(needs), reference, fn, default_prior)
        return fn

    return deco


def methods(problem: Problem | None = None, prior=None) -> list[Method]:
    """All registered methods, sorted by family then name; given a ``problem`` (and ``prior``), only
    those that apply to it (``Method.applies_to``)."""
    _load_all()
    out = sorted(_REGISTRY.values(), key=lambda m: (m.family, m.name))
    if problem is not None:
        out = [m for m in out if m.applies_to(problem, prior)]
    return out


METHOD_TABLE = Path(__file__).with_name("methods.json")  # what `invprior methods` prints without torch


def method_rows() -> list[dict[str, str]]:
    """One row per registered method: name, family, needs and reference (sorted as ``methods()``)."""
    return [{"name": m.name, "family": m.family, "needs": ", ".join(m.needs) or "-", "reference": m.reference}
            for m in methods()]  # fmt: skip


def write_method_table() -> None:
    """Refresh ``methods.json`` from the live registry (a test fails while it is stale)."""
    METHOD_TABLE.write_text(json.dumps(method_rows(), indent=1, ensure_ascii=False) + "\n")


def get(name: str) -> Method:
    _load_all()
    if name not in _REGISTRY:
        raise InvpriorError(f"unknown method {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _load_all() -> None:
    # importing the packages runs their @register decorators
    from . import map as _map  # noqa: F401
    from . import sample as _sample  # noqa: F401


def solve(problem: Problem, prior=None, method: str = "tikhonov", **options) -> Result:
    """Solve ``problem`` with ``prior`` by the registered ``method``; options go to the method.

    Checks the method's needs first and fails with one sentence naming what is missing and
    which methods would work instead. Fills wall time, chi² of the mean and the method name.
    """
    if not isinstance(problem, Problem):
        raise InvpriorError(f"problem must be an invprior Problem (see ip.simulate), got {type(problem).__name__}")
    m = get(method)
    if prior is None and m.default_prior is not None:
        prior = m.default_prior()
    if getattr(prior, "any_size", False) and len(problem.operator.in_shape) == 3:
        prior = prior.at_shape(problem.operator.in_shape)  # a fully convolutional prior follows the image
    missing = m.missing(problem, prior)
    if missing:
        alternatives = [o.name for o in methods(problem, prior) if o.name != m.name]
        alt = f" — use {' or '.join(alternatives[:4])}" if alternatives else ""
        raise InvpriorError(f"{m.name} needs " + " and ".join(missing) + alt)
    allowed = m.options()
    unknown = [k for k in options if k not in allowed]
    if unknown:
        opts = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
        raise InvpriorError(f"{m.name} has no option(s) {', '.join(unknown)}; its options are: {opts}")
    # a prior's card may carry sampler settings tuned for it on validation data; the caller's win
    from_card = {k: v for k, v in _card_defaults(prior, m.name).items() if k in allowed and k not in options}
    options = {**from_card, **options}
    check_options(m.name, m.family, problem, prior, options, allowed)
    evals0 = problem.operator.evals
    t0 = time.perf_counter()
    auto = auto_result = None
    sigma = problem.sigma  # Gaussian noise only
    # a noise-relative regulariser weight (TV, wavelet, ...) acts as weight / sigma in this problem
    bind = getattr(prior, "relative_to_noise", False) and getattr(prior, "noise_sigma", 1) is None
    bind = bind and isinstance(sigma, (int, float)) and sigma > 0
    if getattr(prior, "weight", None) == "auto":
        if m.family != "map":
            raise InvpriorError(f"weight='auto' is for MAP methods; give {m.name} a numeric weight")
        if "blur" in m.needs:  # the discrepancy rule would read the true operator, which a blind user lacks
            raise InvpriorError(f"{m.name} needs a numeric TV weight: weight='auto' needs the true kernel")
        from .auto import discrepancy_weight

        quiet = {k: v for k, v in options.items() if k != "progress"}
        tol = options.get("tol", allowed.get("tol"))

        def run(pr, x0, final: bool):
            kw = dict(quiet)
            if x0 is not None and "x0" in allowed and options.get("x0") is None:
                kw["x0"] = x0  # warm start from the previous weight's estimate
            if not final and isinstance(tol, float):
                kw["tol"] = max(10 * tol, 1e-4)  # loose while searching
            return m.fn(problem, pr, **kw)

        w, trace, bound, auto_result = discrepancy_weight(problem, prior, run)  # in absolute units
        unit = sigma if bind else 1.0  # reported in the regulariser's own units (relative: w·sigma)
        prior = prior.with_weight(w * unit).for_noise(sigma if bind else None)
        auto = {"auto_weight": w * unit, "auto_trace": [[a * unit, b] for a, b in trace],
                "auto_rule": "discrepancy chi2 = 1", "auto_at_bound": bound}  # fmt: skip
        if bound is not None:
            warnings.warn(
                f"weight='auto' could not reach chi2 = 1 with {m.name}: it stopped at the {bound} bound "
                f"w = {w * unit:g} (chi2 {trace[0 if bound == 'lower' else -1][1]:.3g} there); the data may be "
                "fitted better or worse than the noise level allows at any weight: check the noise level",
                AutoWeightWarning,
                stacklevel=2,
            )
    elif bind:
        prior = prior.for_noise(sigma)
    result = m.fn(problem, prior, **options) if auto is None else auto_result  # auto: its final solve
    _check_result(m.name, result)
    if auto is not None:
        result.diagnostics.extra.update(auto)
    if from_card:
        result.diagnostics.extra["prior_card_settings"] = from_card
    result.diagnostics.wall_time = time.perf_counter() - t0
    result.diagnostics.operator_evals = problem.operator.evals - evals0
    result.method = m.name
    with torch.no_grad():
        result.diagnostics.chi2 = [float(c) for c in problem.chi2(result.mean.to(problem.dtype))]
    judged = problem
    if "blur" in m.needs and "fit_chi2" in result.diagnostics.extra:  # blind: judge under the estimated kernel
        result.diagnostics.chi2 = list(result.diagnostics.extra["fit_chi2"])
        judged = _estimated_kernel_problem(problem, result)
        if judged is None:
            result.diagnostics.extra["trust_error"] = "blind methods: the trust layer runs on one measurement at a time"
            return result
    if problem.sigma:  # the trust layer's cheap part: chi2 and p per sample, residual map, flags
        from ..eval.trust_report import trust

        try:
            result.trust = trust(result, judged, prior)
        except InvpriorError as e:  # the check must never cost the user a finished solve
            result.diagnostics.extra["trust_error"] = str(e)
            return result
        n_flags = result.trust.n_flags
        if n_flags:
            kinds = sorted({f.kind for fl in result.trust.flags for f in fl})
            warnings.warn(
                f"{m.name}: {n_flags} trust flag(s) raised ({', '.join(kinds)}); see result.trust.flags",
                TrustWarning,
                stacklevel=2,
            )
    return result
