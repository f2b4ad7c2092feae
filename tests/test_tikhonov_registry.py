"""The registry, ip.solve, and the tikhonov method against dense closed forms."""

from __future__ import annotations

import pytest
import torch

import invprior as ip
from invprior.operators import CT, MRI, Blur, CompressedSensing, Inpainting, PhaseRetrieval, SuperResolution
from invprior.priors import Tikhonov
from invprior.solvers.registry import NEEDS

SHAPE = (1, 8, 8)


def _dense_tikhonov(problem, prior):
    A = problem.operator
    n = A.n
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *A.in_shape)
    M = A(eye).reshape(n, -1).T
    y = problem.y.reshape(-1)
    if M.is_complex():
        M, y = torch.cat([M.real, M.imag]), torch.cat([y.real, y.imag])
    L = prior.operator(A.in_shape)
    Lm = L(eye).reshape(n, -1).T
    mu = prior.weight * problem.sigma**2
    c = torch.full((n,), prior.center, dtype=torch.float64)
    lhs = M.T @ M + mu * Lm.T @ Lm
    rhs = M.T @ y + mu * Lm.T @ (Lm @ c)
    return torch.linalg.solve(lhs, rhs).reshape(A.in_shape)


CASES = {
    "blur-gradient (FFT)": (lambda: Blur.gaussian(SHAPE, 1.0), Tikhonov(50.0, "gradient")),
    "blur-identity (FFT prox)": (lambda: Blur.gaussian(SHAPE, 1.0), Tikhonov(5.0, "identity", center=0.3)),
    "inpainting-identity (mask)": (lambda: Inpainting.random(SHAPE, 0.5), Tikhonov(5.0, "identity", center=0.5)),
    "inpainting-gradient (CG)": (lambda: Inpainting.random(SHAPE, 0.5), Tikhonov(50.0, "gradient")),
    "sr-identity (SVD)": (lambda: SuperResolution(SHAPE, 2), Tikhonov(3.0, "identity")),
    "mri-gradient (CG)": (lambda: MRI.cartesian(SHAPE, 2), Tikhonov(30.0, "gradient")),
    "cs-identity (SVD)": (lambda: CompressedSensing(SHAPE, 20), Tikhonov(3.0, "identity")),
    "ct-gradient (CG)": (lambda: CT(SHAPE, 10), Tikhonov(30.0, "gradient")),
}


@pytest.mark.parametrize("name", CASES)
def test_tikhonov_matches_the_dense_closed_form(name):
    make, prior = CASES[name]
    x = ip.data.image("camera", 8).double()
    problem = ip.simulate(make(), x, 0.05, seed=0)
    r = ip.solve(problem, prior, method="tikhonov", tol=1e-12)
    ref = _dense_tikhonov(problem, prior)
    torch.testing.assert_close(r.mean[0], ref, rtol=1e-6, atol=1e-6)
    assert r.std is None and r.samples.shape == (1, *problem.x_shape)


def test_tikhonov_on_vectors():
    A = ip.operators.Matrix(torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    problem = ip.simulate(A, torch.randn(1, 5, dtype=torch.float64), 0.1, seed=0)
    prior = Tikhonov(2.0, "identity")
    r = ip.solve(problem, prior, method="tikhonov")
    M = A.dense()
    ref = torch.linalg.solve(M.T @ M + 2.0 * 0.01 * torch.eye(5, dtype=torch.float64), M.T @ problem.y[0])
    torch.testing.assert_close(r.mean[0], ref)


def test_tikhonov_deblurring_psnr_floor_and_diagnostics():
    x = ip.data.image("camera", 128)
    problem = ip.simulate(Blur.gaussian(x.shape, 2.0), x, 0.02, seed=0)
    r = ip.solve(problem, Tikhonov(100.0, "gradient"), method="tikhonov")
    assert ip.eval.psnr(r.mean, x) > 24.5  # measured 24.89 dB
    assert ip.eval.psnr(r.mean, x) > ip.eval.psnr(problem.y, x) + 1.0
    d = r.diagnostics
    assert d.wall_time > 0 and d.operator_evals >= 1 and 0.5 < d.chi2[0] < 2.0 and len(d.loss_trace) == 1


def test_needs_messages_name_what_is_missing():
    x = torch.rand(1, 1, 8, 8)
    ct = ip.simulate(CT(x.shape, 8), x, 0.1)
    assert NEEDS["svd"][1](ct, None) == "CT has none"
    pr = ip.simulate(PhaseRetrieval(x.shape), x, 0.1)
    with pytest.raises(ip.InvpriorError, match="tikhonov needs a linear operator; PhaseRetrieval is nonlinear"):
        ip.solve(pr, Tikhonov(), method="tikhonov")
    pois = ip.simulate(Blur.gaussian(x.shape, 1.0), x, ip.operators.PoissonNoise(0.1))
    with pytest.raises(ip.InvpriorError, match="needs Gaussian noise; the noise is PoissonNoise"):
        ip.solve(pois, Tikhonov(), method="tikhonov")


def test_unknown_method_and_option():
    x = torch.rand(1, 1, 8, 8)
    p = ip.simulate(Blur.gaussian(x.shape, 1.0), x, 0.1)
    with pytest.raises(ip.InvpriorError, match="unknown method 'dps2'"):
        ip.solve(p, None, method="dps2")
    with pytest.raises(ip.InvpriorError, match=r"no option.*steps"):
        ip.solve(p, None, method="tikhonov", steps=3)


def test_methods_rows():
    rows = {m.name: m for m in ip.methods()}
    assert {"tikhonov", "exact"} <= set(rows)
    for m in rows.values():
        assert m.family in ("map", "sample") and m.reference and m.summary


def test_methods_of_a_problem_are_those_that_apply():
    x = ip.data.image("camera", 16).double()
    problem = ip.simulate(ip.operators.Blur.gaussian(x.shape, 1.0), x, 0.02, seed=0)
    tv = [m.name for m in ip.methods(problem, ip.priors.TV(1.0))]
    assert {"fista", "pdhg", "admm", "blind_tv"} <= set(tv) and "dps" not in tv and "exact" not in tv
    assert all(ip.solvers.get(n).applies_to(problem, ip.priors.TV(1.0)) for n in tv)
    assert not ip.solvers.get("pdhg").applies_to(problem, ip.priors.WaveletL1(1.0))
    assert len(ip.methods()) > len(tv)
