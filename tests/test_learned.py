"""The learned denoiser: shipped weights, safetensors-only loading, training checkpoints and resume."""

from __future__ import annotations

import pickle

import pytest
import torch

import invprior as ip
from invprior.models import EMA, DenoiserUNet, load_state, load_weights, save_state, save_weights


def test_shipped_denoiser_loads_and_denoises_a_test_image():
    D = ip.priors.LearnedDenoiser.pretrained()
    assert D.info["params"] < 3_000_000
    x = ip.data.image("camera", 96)
    for s in (0.05, 0.1):
        noisy = x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
        out = D(noisy, s)
        assert out.shape == x.shape
        assert ip.eval.psnr(out, x) > ip.eval.psnr(noisy, x) + 6.0
    # odd sizes are padded, colour images are denoised per channel
    assert D(torch.rand(2, 3, 30, 27), 0.1).shape == (2, 3, 30, 27)


def test_learned_denoiser_inside_dpir():
    x = ip.data.image("camera", 64)
    problem = ip.simulate(ip.operators.Blur.gaussian(x.shape, 1.5), x, 0.02, seed=0)
    r = ip.solve(problem, None, method="dpir")  # prior=None: the shipped denoiser
    assert ip.eval.psnr(r.mean, x) > ip.eval.psnr(problem.y, x) + 3.0


def test_weights_files_are_safetensors_only(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps({"w": torch.zeros(2)}))
    with pytest.raises(ip.InvpriorError, match="pickle"):
        load_weights(bad)
    (tmp_path / "trunc.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(ip.InvpriorError, match="not a valid safetensors"):
        load_weights(tmp_path / "trunc.safetensors")
    save_weights(tmp_path / "other.safetensors", {"a": torch.zeros(3)}, {"architecture": "Something"})
    with pytest.raises(ip.InvpriorError, match="does not hold DenoiserUNet"):
        ip.priors.LearnedDenoiser.load(tmp_path / "other.safetensors")


def test_training_checkpoint_resumes_exactly(tmp_path):
    def make():
        torch.manual_seed(0)
        m = DenoiserUNet(1, (8, 16), 1)
        return m, EMA(m, 0.9), torch.optim.Adam(m.parameters(), lr=1e-3)

    def step(m, ema, opt, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(4, 1, 16, 16, generator=g)
        loss = ((m(x + 0.1 * torch.randn(x.shape, generator=g), torch.full((4,), 0.1)) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(m)

    m1, e1, o1 = make()
    for s in range(4):
        step(m1, e1, o1, s)
    m2, e2, o2 = make()
    for s in range(2):
        step(m2, e2, o2, s)
    save_state(tmp_path / "ckpt.safetensors", m2, e2, o2, {"step": 2})
    m3, e3, o3 = make()
    assert load_state(tmp_path / "ckpt.safetensors", m3, e3, o3)["step"] == 2
    for s in range(2, 4):
        step(m3, e3, o3, s)
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(e1.model.state_dict().values(), e3.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
