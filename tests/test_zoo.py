"""Model zoo: architectures, the training loop, loading, diffusers checkpoints (issue 5)."""

from __future__ import annotations

import math

import pytest
import torch

import invprior as ip
from invprior._checks import InvpriorError
from invprior.models.generative import Classifier, ConvVAE, DCGANGenerator, RealNVP
from invprior.models.unet import DiffusionUNet, EDMDenoiser
from invprior.priors.diffusion import alphas_cumprod_from_config


def _perturbed_flow() -> RealNVP:
    """A RealNVP whose couplings are not the identity (the zero-initialised last layers get weights)."""
    torch.manual_seed(0)
    flow = RealNVP(couplings=2, hidden=16).double()
    with torch.no_grad():
        for c in [*flow.level1, *flow.level2]:
            c.net[-1].weight.normal_(0, 0.05)
            c.net[-1].bias.normal_(0, 0.05)
            c.scale.fill_(0.7)
    return flow


def test_flow_inverse_and_log_det_match_autograd():
    flow = _perturbed_flow()
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, ld = flow(x)
    torch.testing.assert_close(flow.inverse(z), x, atol=1e-10, rtol=0)
    J = torch.autograd.functional.jacobian(lambda v: flow(v.reshape(1, 1, 28, 28))[0][0], x[0].flatten())
    assert J.shape == (784, 784)
    ref = torch.linalg.slogdet(J)
    assert float(ref.sign) != 0
    assert float(ld[0].detach()) == pytest.approx(float(ref.logabsdet), rel=1e-9, abs=1e-8)
    # log_prob is the change of variables with a standard normal latent
    lp = flow.log_prob(x)
    torch.testing.assert_close(lp, -0.5 * (z**2).sum(1) - 392 * math.log(2 * math.pi) + ld)
    # the inverse pass's own log-determinant is minus the forward one, and Flow uses it
    x2, ld_inv = flow.inverse(z, logdet=True)
    torch.testing.assert_close(x2, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(ld_inv, -ld, atol=1e-8, rtol=1e-10)
    x3, lp3 = ip.priors.Flow(flow, (1, 28, 28), compute_dtype=None).inverse_log_prob(z)
    torch.testing.assert_close(x3, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(lp3, lp, atol=1e-8, rtol=1e-10)


def test_edm_denoiser_tends_to_the_data_mean_and_identity():
    """With c_skip/c_out of EDM, D(x, sigma) -> x as sigma -> 0 and D -> the network's output scale
    at large sigma: the untrained net (zero last layer) returns exactly (0 + 1) / 2 = 0.5 there."""
    D = EDMDenoiser(DiffusionUNet(1, (8, 16, 16), 1, 32), sigma_data=0.5)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(D(x, torch.full((2,), 1e-6)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(D(x, torch.full((2,), 1e6)), torch.full_like(x, 0.5), atol=1e-5, rtol=0)


def test_vae_and_gan_output_shape_and_range():
    vae = ConvVAE(latent=8, width=8).requires_grad_(False)
    gan = DCGANGenerator(latent=12, width=16).eval().requires_grad_(False)
    z = 5 * torch.randn(4, 8)
    out = vae.decode(z)
    assert out.shape == (4, 1, 28, 28) and float(out.min()) >= 0 and float(out.max()) <= 1
    mu, logstd = vae.encode(out)
    assert mu.shape == (4, 8) and logstd.shape == (4, 8)
    g = gan(5 * torch.randn(4, 12))
    assert g.shape == (4, 1, 28, 28) and float(g.min()) >= 0 and float(g.max()) <= 1
    assert Classifier().features(g).shape == (4, 128)


def test_frechet_distance_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = 2 * torch.randn(20000, 3, generator=g, dtype=torch.float64) + 1
    # |1|^2 * 3 + tr(I + 4I - 2 * 2I) = 3 + 3
    assert ip.eval.frechet_distance_from_features(a, b) == pytest.approx(6.0, rel=0.03)
    assert ip.eval.frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-9)


def test_training_loop_resumes_and_exports(tmp_path):
    from invprior.models.tasks import make_task
    from invprior.models.training import TrainConfig, fit

    def cfg(steps):
        return TrainConfig(kind="vae", data="shapes", steps=steps, batch=8, lr=1e-3, warmup=2, val_every=1000,
                           ckpt_every=3, options={"latent": 4, "width": 4})  # fmt: skip

    fit(make_task(cfg(6)), cfg(6), tmp_path / "a")
    fit(make_task(cfg(3)), cfg(3), tmp_path / "b")
    out = fit(make_task(cfg(6)), cfg(6), tmp_path / "b")  # resumes at step 3
    wa, _ = ip.models.load_weights(tmp_path / "a" / "vae-shapes.safetensors")
    wb, meta = ip.models.load_weights(out)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], msg=k)
    assert meta["kind"] == "vae" and meta["steps"] == 6
    vae = ip.zoo.load_file(out)
    assert isinstance(vae, ip.priors.LatentGenerator) and vae.latent_dim == 4 and vae.has_encoder
    assert vae.sample(3).shape == (3, 1, 28, 28)


def test_zoo_errors_are_clear(tmp_path):
    with pytest.raises(InvpriorError, match=r"no shipped model named 'nope'; shipped: .*denoiser-natural"):
        ip.zoo.load("nope")
    bad = tmp_path / "bad.safetensors"
    torch.save({"a": torch.zeros(2)}, bad)
    with pytest.raises(InvpriorError, match="pickle"):
        ip.zoo.load_file(bad)
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(InvpriorError, match="not a valid safetensors"):
        ip.zoo.load_file(bad)
    with pytest.raises(InvpriorError, match="latents of shape"):
        ip.priors.LatentGenerator(DCGANGenerator(4, 8), 4, (1, 28, 28))(torch.zeros(2, 5))


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_alphas_cumprod_match_diffusers(schedule):
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.DDPMScheduler(num_train_timesteps=50, beta_schedule=schedule)
    ours = alphas_cumprod_from_config(dict(s.config))
    torch.testing.assert_close(ours.float(), s.alphas_cumprod.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_from_diffusers_matches_a_direct_computation(tmp_path, prediction, tiny_diffusers_checkpoint):
    unet, sched = tiny_diffusers_checkpoint(tmp_path, prediction)
    prior = ip.priors.Diffusion.from_diffusers(tmp_path)
    assert prior.shape == (1, 8, 8)
    x = torch.rand(2, 1, 8, 8)
    ac = sched.alphas_cumprod.double()
    for t in (0, 37, 99):
        a, s = float(ac[t].sqrt()), float((1 - ac[t]).sqrt())
        sigma01 = s / a / 2  # the VE noise level of timestep t, in [0, 1] units
        xt = a * (2 * x - 1)  # what the network sees at timestep t
        with torch.no_grad():
            out = unet(xt, torch.full((2,), t)).sample
        x0 = (xt - s * out) / a if prediction == "epsilon" else a * xt - s * out
        torch.testing.assert_close(prior.denoise(x, sigma01), (x0 + 1) / 2, rtol=1e-4, atol=1e-5)
    assert prior.sigma_max == pytest.approx(float(((1 - ac[-1]) / ac[-1]).sqrt()) / 2)


def test_from_diffusers_needs_a_scheduler(tmp_path):
    pytest.importorskip("diffusers")
    with pytest.raises(InvpriorError, match=r"scheduler_config\.json"):
        ip.priors.Diffusion.from_diffusers(tmp_path)


def test_from_diffusers_non_square_dtype_device_and_quiet(tmp_path, capsys):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=[8, 16], in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    ).eval()  # fmt: skip
    unet.save_pretrained(tmp_path / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=100).save_pretrained(tmp_path / "scheduler")
    capsys.readouterr()
    prior = ip.priors.Diffusion.from_diffusers(tmp_path, torch_dtype=torch.float64, device="cpu")
    assert prior.shape == (1, 8, 16)  # was a TypeError
    assert next(prior.module.parameters()).dtype == torch.float64
    x = torch.rand(2, 1, 8, 16)
    assert prior.denoise(x, 0.5).dtype == torch.float32  # the input's dtype comes back
    err = capsys.readouterr().err
    assert "warn" not in err.lower(), err
    with pytest.raises(InvpriorError, match="not a device torch knows"):
        ip.priors.Diffusion.from_diffusers(tmp_path, device="no-such-device")
