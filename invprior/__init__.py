"""invprior: inverse problems ``y = A(x) + n`` with priors -- one API from Tikhonov to diffusion.

import invprior as ip
x = ip.data.image("camera", size=128)
A = ip.operators.Blur.gaussian(x.shape, sigma=2.0)
problem = ip.simulate(A, x, noise=ip.operators.GaussianNoise(0.02), seed=0)
result = ip.solve(problem, ip.priors.TV(weight=0.2), method="fista")
ip.eval.psnr(result.mean, x)  # 26.55 dB (docs/results/classical.md)
"""

import importlib
from typing import TYPE_CHECKING

from ._errors import InvpriorError

if TYPE_CHECKING:  # the names below load on first use (PEP 562), so `invprior --help` does not import torch
    from . import data, eval, operators, priors, solvers, zoo
    from .operators import Problem, simulate
    from .result import Diagnostics, Result
    from .solvers import methods, solve

_SUBMODULES = ("data", "eval", "operators", "priors", "solvers", "zoo")
_NAMES = {"Problem": "operators", "simulate": "operators", "Diagnostics": "result", "Result": "result",
          "methods": "solvers", "solve": "solvers"}  # fmt: skip


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'invprior' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.2.0"

__all__ = [
    "Diagnostics",
    "InvpriorError",
    "Problem",
    "Result",
    "__version__",
    "data",
    "eval",
    "methods",
    "operators",
    "priors",
    "simulate",
    "solve",
    "solvers",
    "zoo",
]
