"""Conditional models (e2e, cfm), the flow-matching prior's change of variables, and PnP-Flow."""

from __future__ import annotations

import pytest
import torch

import invprior as ip
from invprior._checks import InvpriorError
from invprior.models.conditional import (
    FAMILY,
    E2EUNet,
    FlowDenoiser,
    FlowUNet,
    OutOfFamilyWarning,
    condition,
    describe,
    family_check,
)
from invprior.models.unet import DiffusionUNet
from invprior.operators import MRI, Blur, Inpainting, SuperResolution, simulate
from invprior.priors import ConditionalModel

SHAPE = (1, 28, 28)


def _tiny(cond: int) -> DiffusionUNet:
    torch.manual_seed(0)
    return DiffusionUNet(1, (8, 16), 1, 16, False, 0.0, cond)


def test_describe_names_each_task_of_the_family():
    assert describe(Inpainting.random(SHAPE, 0.7, seed=0))[0] == "inpaint"
    task, p = describe(Inpainting.box(SHAPE, 12))
    assert task == "box" and p["side"] == 12
    assert describe(SuperResolution(SHAPE, 4)) == ("sr", {"factor": 4})
    task, p = describe(MRI.cartesian(SHAPE, 4, seed=0))
    assert task == "mri" and 3.5 < p["acceleration"] < 4.5
    with pytest.raises(InvpriorError, match="not for Blur"):
        describe(Blur.gaussian(SHAPE, 1.0))


def test_family_check_lists_what_lies_outside():
    assert family_check(Inpainting.random(SHAPE, 0.7, seed=0), 0.05, FAMILY) == []
    out = family_check(Inpainting.random(SHAPE, 0.85, seed=0), 0.15, FAMILY)
    assert len(out) == 2 and "missing" in out[0] and "noise sigma 0.15" in out[1]
    assert "factor 2" in family_check(SuperResolution(SHAPE, 2), 0.05, FAMILY)[0]


def test_condition_maps_hold_the_pseudo_inverse_and_the_operator():
    x = ip.data.dataset("shapes", "test")[:2]
    A = Inpainting.random(x.shape, 0.7, seed=0)
    y = A(x)
    c = condition(A, y)
    assert c.shape == (2, 3, 28, 28)
    assert torch.allclose((c[:, :1] + 1) / 2, A.pinv(y).float())
    assert torch.equal(c[0, 1].bool(), A.mask[0])
    k = condition(MRI.cartesian(x.shape, 4, seed=0), MRI.cartesian(x.shape, 4, seed=0)(x))
    assert float(k[0, 2].mean()) < 0.5  # the k-space line mask


def test_e2e_refuses_other_tasks_naming_both_and_warns_under_operator_shift():
    x = ip.data.dataset("shapes", "test")[:2].double()
    sr_only = {"sr": FAMILY["sr"], "sigma": FAMILY["sigma"]}
    model = ConditionalModel(E2EUNet(_tiny(2), sr_only).eval(), "e2e", SHAPE, "e2e-test")
    with pytest.raises(InvpriorError, match=r"trained for sr.*not for inpaint"):
        ip.solve(simulate(Inpainting.random(x.shape, 0.7, seed=0), x, 0.05), model, method="e2e")
    with pytest.raises(InvpriorError, match=r"trained for sr.*not for Blur"):
        ip.solve(simulate(Blur.gaussian(x.shape, 1.0), x, 0.05), model, method="e2e")
    shifted = simulate(SuperResolution(x.shape, 2), x, 0.05)
    with pytest.warns(OutOfFamilyWarning, match="factor 2"):
        r = ip.solve(shifted, model, method="e2e")
    assert r.std is None and r.diagnostics.extra["out_of_family"]
    with pytest.raises(InvpriorError, match="strict"):
        ip.solve(shifted, model, method="e2e", strict=True)
    with pytest.raises(InvpriorError, match="end-to-end model"):
        ip.solve(shifted, ip.priors.TV(0.1), method="e2e")


def test_cfm_draws_samples_and_counts_evaluations():
    x = ip.data.dataset("digits", "test")[:2].double()
    model = ConditionalModel(FlowUNet(_tiny(3), FAMILY).eval(), "cfm", SHAPE, "cfm-test")
    problem = simulate(SuperResolution(x.shape, 4), x, 0.05)
    r = ip.solve(problem, model, method="cfm", n_samples=3, steps=5)
    assert r.samples.shape == (3, 2, *SHAPE) and r.std is not None and r.diagnostics.nfe == 5
    r = ip.solve(problem, model, method="cfm", n_samples=3, steps=5, solver="heun")
    assert r.diagnostics.nfe == 9  # two per step, one at the last
    with pytest.raises(InvpriorError, match="euler"):
        ip.solve(problem, model, method="cfm", solver="rk4")


class _GaussianVelocity(torch.nn.Module):
    """The exact velocity ``E[ε - x0 | x_t]`` of data ``N(m, s² I)`` in [-1, 1] space."""

    def __init__(self, m: float, s: float):
        super().__init__()
        self.m, self.s = m, s

    def forward(self, xt, t, cond=None):
        t = torch.as_tensor(t, dtype=xt.dtype).reshape(-1, 1, 1, 1)
        v = (1 - t) ** 2 * self.s**2 + t**2
        r = xt - (1 - t) * self.m
        e_x0 = self.m + (1 - t) * self.s**2 / v * r
        e_eps = t / v * r
        return e_eps - e_x0


def test_flow_denoiser_is_the_exact_tweedie_denoiser_of_the_path():
    m01, s01 = 0.3, 0.2  # data N(m01, s01²) in [0, 1] units
    D = FlowDenoiser(_GaussianVelocity(2 * m01 - 1, 2 * s01))
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64) * 2
    for sigma in (0.01, 0.3, 5.0):
        exact = m01 + s01**2 / (s01**2 + sigma**2) * (x - m01)
        assert torch.allclose(D(x, torch.tensor(sigma)), exact, atol=1e-10)


def test_pnp_flow_runs_on_a_diffusion_prior_and_beats_the_pseudo_inverse():
    from invprior.eval import psnr

    x = ip.data.dataset("shapes", "test")[:2].double()
    problem = simulate(Inpainting.random(x.shape, 0.7, seed=0), x, 0.05, seed=0)
    r = ip.solve(problem, ip.zoo.load("diffusion-shapes"), method="pnp_flow", n_samples=2, steps=20)
    assert psnr(r.mean.clamp(0, 1), x) > psnr(problem.operator.pinv(problem.y), x) + 5
