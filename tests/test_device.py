"""Device and dtype: results follow the input tensor, learned models run where their weights are.

This machine has only a CPU, so placement is checked on torch's ``meta`` device: a tensor created on
the CPU by a hard-coded ``"cpu"`` (or a missing ``device=``) meets a meta tensor and raises, or leaves
a CPU result that the assertions catch. Iterative solvers read numbers (``.item()``) and cannot run
on meta; for them the dtype tests check that float64 is carried through.
"""

from __future__ import annotations

import pytest
import torch
from test_operators import LINEAR

import invprior as ip

META = torch.device("meta")


@pytest.mark.parametrize("name", list(LINEAR))
def test_every_linear_operator_follows_its_input_to_another_device(name):
    A = LINEAR[name]()
    x = torch.zeros(2, *A.in_shape, device=META)
    y = A(x)
    assert y.device == META and tuple(y.shape) == (2, *A.out_shape)
    back = A.T(y)
    assert back.device == META and back.shape == x.shape
    if A.has_svd:
        S = A.svd()
        assert S.V(S.Vt(x)).device == META and S.U(S.Ut(y)).device == META
    try:
        p = A.pinv(y)
    except ip.InvpriorError:  # no cheap pseudo-inverse
        p = None
    assert p is None or p.device == META


def test_nonlinear_operators_and_closed_form_proxes_follow_their_input():
    x = torch.zeros(1, 1, 16, 16, device=META)
    assert ip.operators.PhaseRetrieval((1, 16, 16))(x).device == META
    assert ip.operators.BeerLambert(ip.operators.CT((1, 16, 16), 10))(x).device == META
    for A in (ip.operators.Inpainting.random((1, 16, 16), missing=0.5), ip.operators.Blur.gaussian((1, 16, 16), 1.0)):
        assert A.prox_data(x, A(x), 1.0).device == META
    for R in (ip.priors.WaveletL1(1.0), ip.priors.DCTL1(1.0), ip.priors.Tikhonov(1.0)):
        assert R.prox(x, 0.1).device == META


# one shipped model per kind, and the call that runs its network
ZOO_CALLS = {
    "diffusion-digits": lambda m, x: m.denoise(x, torch.full((2,), 0.5, device=x.device, dtype=x.dtype)),
    "diffusion-natural": lambda m, x: m.at_shape((3, 20, 24)).denoise(
        torch.zeros(2, 3, 20, 24, device=x.device, dtype=x.dtype), torch.full((2,), 0.5, device=x.device)
    ),
    "vae-digits": lambda m, x: m(m.encode(x)),
    "gan-shapes": lambda m, x: m(torch.zeros(2, m.latent_dim, device=x.device, dtype=x.dtype)),
    "flow-shapes": lambda m, x: m.inverse(m.forward(x)[0]),
    "denoiser-natural": lambda m, x: m(x, 0.1),
    "fm-digits": lambda m, x: m.denoise(x, torch.full((2,), 0.5, device=x.device, dtype=x.dtype)),
    "ldm-digits": lambda m, x: m.decode(m.encode(x)),
}


@pytest.mark.parametrize("name", list(ZOO_CALLS))
def test_zoo_models_placed_on_a_device_take_inputs_from_anywhere(name):
    x = torch.rand(2, 1, 28, 28)
    on_meta = ip.zoo.load(name, device="meta")  # every tensor the call creates must follow it there
    assert ZOO_CALLS[name](on_meta, x.to(META)).device == META
    as64 = ip.zoo.load(name, dtype=torch.float64)  # the network in float64, inputs in float32
    ref = ZOO_CALLS[name](ip.zoo.load(name), x)
    got = ZOO_CALLS[name](as64, x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=2e-4, rtol=2e-4)
    assert ZOO_CALLS[name](as64, x.double()).dtype == torch.float64


def test_results_keep_float64_through_map_solvers_and_samplers():
    x = ip.data.image("camera", 24).double()
    p = ip.simulate(ip.operators.Blur.gaussian(x.shape, 1.0), x, 0.02, seed=0)
    for prior, method, opts in (
        (ip.priors.TV(), "pdhg", {}),
        (ip.priors.WaveletL1(), "fista", {}),
        (ip.priors.TVDenoiser(), "dpir", {}),
        (ip.zoo.load("diffusion-natural"), "pigdm", {"steps": 4, "n_samples": 2}),
    ):
        r = ip.solve(p, prior, method=method, **opts)
        assert r.mean.dtype == torch.float64 and r.samples.dtype == torch.float64, method
    moved = p.to(dtype=torch.float32)
    assert moved.y.dtype == torch.float32 and moved.truth.dtype == torch.float32
    assert ip.solve(moved, ip.priors.TV(), method="pdhg").mean.dtype == torch.float32


def test_a_device_that_does_not_exist_is_one_clear_error():
    for bad, match in (("cuda", "does not exist"), ("cuda:7", "does not exist"), ("gpu", "not a device")):
        with pytest.raises(ip.InvpriorError, match=match):
            ip.zoo.load("diffusion-digits", device=bad)
    with pytest.raises(ip.InvpriorError, match="floating"):
        ip.zoo.load("diffusion-digits", dtype=torch.int64)
    x = torch.zeros(1, 1, 8, 8)
    p = ip.simulate(ip.operators.Identity(x.shape), x, 0.1)
    with pytest.raises(ip.InvpriorError, match="does not exist"):
        p.to("cuda")
