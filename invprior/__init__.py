"""invprior: inverse problems ``y = A(x) + n`` with priors -- one API from Tikhonov to diffusion.

import invprior as ip
x = ip.data.image("camera", size=128)
A = ip.operators.Blur.gaussian(sigma=2.0, shape=x.shape)
problem = ip.simulate(A, x, noise=ip.operators.GaussianNoise(0.02), seed=0)
result = ip.solve(problem, ip.priors.TV(weight=10.0), method="fista")
ip.eval.psnr(result.mean, x)  # 26.55 dB (docs/results/classical.md)
"""

from . import data, eval, operators, priors, solvers, zoo
from ._checks import InvpriorError
from .operators import Problem, simulate
from .result import Diagnostics, Result
from .solvers import methods, solve

__version__ = "0.1.0"

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
