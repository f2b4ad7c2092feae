"""Every diffusion sampler on images: the shipped zoo prior at the samplers' defaults, and a diffusers
checkpoint made in the test (issue 7). The exact-posterior checks are in test_diffusion_samplers.py."""

from __future__ import annotations

import pytest
import torch

import invprior as ip
from invprior.eval.bench_diffusion import SAMPLERS, make_operator
from invprior.solvers._common import initial_estimate


@pytest.fixture(scope="module")
def shapes_prior():
    return ip.zoo.load("diffusion-shapes")


# floors over the back-projection (A^T y / A⁺ y clipped to [0, 1]); measured on this image, 2 samples:
# inpaint 70% (back 8.0 dB): 15.5 (diffpir) to 22.8 (pigdm); deblur (back 15.9): 18.8 (ddnm) to 27.6 (mm)
FLOOR = {"inpaint": 5.0, "deblur": 2.0}


@pytest.mark.parametrize("task", list(FLOOR))
@pytest.mark.parametrize("method", SAMPLERS)
def test_each_sampler_beats_the_back_projection_with_the_shipped_prior(shapes_prior, method, task):
    """At its defaults on a fixed shapes test image (noise 0.05): the posterior mean of 2 samples is
    well above the back-projection, the data fit is at the noise level (chi² in (0.3, 3)), the two
    samples differ, and the diagnostics count the network's evaluations."""
    x = ip.data.dataset("shapes", "test")[3:4]
    problem = ip.simulate(make_operator(task, tuple(x.shape)), x, 0.05, seed=0)
    back = ip.eval.psnr(initial_estimate(problem).clamp(0, 1), x)
    nfe0 = shapes_prior.nfe
    r = ip.solve(problem, shapes_prior, method=method, n_samples=2, seed=0)
    assert r.samples.shape == (2, *x.shape) and torch.isfinite(r.samples).all()
    assert ip.eval.psnr(r.mean.clamp(0, 1), x) > back + FLOOR[task]
    assert 0.3 < r.diagnostics.chi2[0] < 3.0
    assert float((r.samples[0] - r.samples[1]).abs().max()) > 0.01
    assert r.diagnostics.nfe == shapes_prior.nfe - nfe0 > 0 and r.diagnostics.wall_time > 0


@pytest.fixture(scope="module")
def diffusers_prior(tmp_path_factory, tiny_diffusers_checkpoint):
    folder = tmp_path_factory.mktemp("ddpm")
    tiny_diffusers_checkpoint(folder)
    return ip.priors.Diffusion.from_diffusers(folder)


@pytest.mark.parametrize("method", SAMPLERS)
def test_each_sampler_runs_on_a_diffusers_checkpoint(diffusers_prior, method):
    """The same solve call works with an external (untrained, VP, epsilon-prediction) checkpoint: the
    samples are finite, of the problem's shape, and the NFE is what the prior counted."""
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    problem = ip.simulate(ip.operators.Inpainting.random(tuple(x.shape), 0.5, seed=0), x, 0.05, seed=0)
    nfe0 = diffusers_prior.nfe
    r = ip.solve(problem, diffusers_prior, method=method, n_samples=2, steps=5, seed=0)
    assert r.samples.shape == (2, 1, 1, 8, 8) and torch.isfinite(r.samples).all()
    assert r.diagnostics.nfe == diffusers_prior.nfe - nfe0 > 0
