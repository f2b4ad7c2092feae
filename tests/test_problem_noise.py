"""Noise models, Problem and simulate: likelihood gradients, chi², and one clear error for bad input."""

from __future__ import annotations

import math

import pytest
import torch

import invprior as ip
from invprior.operators import MRI, Blur, GaussianNoise, Identity, Inpainting, PoissonNoise, Problem


def test_gaussian_nll_gradient_matches_autograd():
    noise = GaussianNoise(0.3)
    y = torch.randn(2, 5, dtype=torch.float64)
    z = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(noise.nll(y, z).sum(), z)
    torch.testing.assert_close(noise.grad_nll(y, z.detach()), g)
    # normalisation: the density integrates to one (check the constant against the closed form)
    assert float(noise.nll(y, y)[0]) == pytest.approx(0.5 * 5 * math.log(2 * math.pi * 0.09))


def test_poisson_nll_gradient_and_moments():
    noise = PoissonNoise(gain=0.01)
    z = torch.rand(2, 50, dtype=torch.float64) + 0.5
    y = noise.sample(z, torch.Generator().manual_seed(0))
    zz = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(noise.nll(y, zz).sum(), zz)
    torch.testing.assert_close(noise.grad_nll(y, z), g)
    big = torch.full((1, 200_000), 0.7, dtype=torch.float64)
    s = noise.sample(big, torch.Generator().manual_seed(1))
    assert float(s.mean()) == pytest.approx(0.7, rel=1e-3)
    assert float(s.var()) == pytest.approx(0.01 * 0.7, rel=2e-2)


@pytest.mark.parametrize("make", [lambda s: Blur.gaussian(s, 1.5), lambda s: MRI.cartesian(s, 4, 0)])
def test_chi2_is_one_at_the_noise_level(make):
    x = ip.data.image("camera", 64)
    A = make(x.shape)
    p = ip.simulate(A, x, GaussianNoise(0.05), seed=3)
    assert float(p.chi2(x)) == pytest.approx(1.0, abs=0.06)


def test_chi2_poisson_is_one_at_the_truth():
    x = ip.data.image("camera", 64) * 0.8 + 0.1
    p = ip.simulate(Identity(x.shape), x, PoissonNoise(0.01), seed=0)
    assert float(p.chi2(x)) == pytest.approx(1.0, abs=0.06)


def test_complex_noise_has_sigma_per_component():
    z = torch.zeros(1, 100_000, dtype=torch.complex128)
    y = GaussianNoise(0.2).sample(z, torch.Generator().manual_seed(0))
    assert float(y.real.std()) == pytest.approx(0.2, rel=0.02)
    assert float(y.imag.std()) == pytest.approx(0.2, rel=0.02)


def test_grad_nll_for_a_problem_matches_autograd():
    x = ip.data.image("camera", 32).double()
    p = ip.simulate(MRI.cartesian(x.shape, 3, 0), x, 0.1, seed=0)
    x0 = torch.rand_like(x).requires_grad_(True)
    (g,) = torch.autograd.grad(p.nll(x0).sum(), x0)
    torch.testing.assert_close(p.grad_nll(x0.detach()), g)


def test_simulate_is_reproducible():
    x = ip.data.image("camera", 32)
    A = Inpainting.random(x.shape, 0.5, seed=0)
    a = ip.simulate(A, x, 0.1, seed=7).y
    b = ip.simulate(A, x, 0.1, seed=7).y
    c = ip.simulate(A, x, 0.1, seed=8).y
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_inputs_fail_early_with_one_clear_sentence():
    x = ip.data.image("camera", 32)
    A = Blur.gaussian(x.shape, 1.0)
    with pytest.raises(ip.InvpriorError, match=r"\[0, 1\]"):
        ip.simulate(A, x * 3, 0.1)
    with pytest.raises(ip.InvpriorError, match="shape"):
        ip.simulate(A, x[..., :31], 0.1)
    y = A(x)
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ip.InvpriorError, match="NaN"):
        Problem(A, y, GaussianNoise(0.1))
    with pytest.raises(ip.InvpriorError, match="y"):
        Problem(A, torch.zeros(1, 1, 30, 30), GaussianNoise(0.1))
    with pytest.raises(ip.InvpriorError, match="complex"):
        Problem(MRI.cartesian(x.shape, 4), torch.zeros(1, MRI.cartesian(x.shape, 4).out_shape[0]), GaussianNoise(0.1))
    with pytest.raises(ip.InvpriorError, match="sigma"):
        GaussianNoise(-1.0)


def test_a_problem_takes_the_noise_as_a_number_as_simulate_does():
    A = ip.operators.Blur.gaussian((1, 16, 16), 1.0)
    y = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    p = ip.Problem(A, y, 0.02)
    assert isinstance(p.noise, ip.operators.GaussianNoise) and p.sigma == 0.02
    with pytest.raises(ip.InvpriorError, match="a Gaussian sigma"):
        ip.Problem(A, y, "0.02")
    with pytest.raises(ip.InvpriorError, match=">= 0"):
        ip.Problem(A, y, -1.0)
