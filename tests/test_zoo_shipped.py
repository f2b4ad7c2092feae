"""The shipped zoo models: present, carded, and as good as their cards say (issue 5)."""

from __future__ import annotations

import math

import pytest
import torch

import invprior as ip

SHIPPED = ["diffusion-shapes", "diffusion-digits", "vae-shapes", "vae-digits", "gan-shapes", "flow-shapes",
           "fm-shapes", "fm-digits", "e2e-shapes", "e2e-digits", "cfm-shapes", "cfm-digits", "ae-shapes", "ae-digits",
           "ldm-shapes", "ldm-digits"]  # fmt: skip


def test_every_required_model_is_shipped_with_a_card():
    names = {r["name"] for r in ip.zoo.list()}
    assert set(SHIPPED) | {"classifier-shapes", "classifier-digits", "denoiser-natural"} <= names
    for n in SHIPPED:
        card = ip.zoo.info(n)
        assert card["command"].startswith("invprior train ") and card["parameters"] > 0
        assert card["size bytes"] < 8e6 and card["train seconds"] > 0


@pytest.mark.parametrize("name", ["diffusion-shapes", "diffusion-digits", "fm-shapes", "fm-digits"])
def test_shipped_diffusion_beats_wiener_and_tends_to_the_mean(name):
    """The flow-matching priors run as diffusion priors through the exact change of variables."""
    from invprior.eval.bench_zoo import wiener_denoise

    prior = ip.zoo.load(name)
    assert isinstance(prior, ip.priors.Diffusion) and prior.shape == (1, 28, 28)
    data = name.split("-")[1]
    train, test = ip.data.dataset(data, "train"), ip.data.dataset(data, "test")[:200]
    noisy = test + 0.2 * torch.randn(test.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mse = float(((prior.denoise(noisy, 0.2) - test) ** 2).mean())
        mse_w = float(((wiener_denoise(train, noisy, 0.2) - test) ** 2).mean())
        # measured: 0.0030 vs 0.0110 (shapes), 0.00095 vs 0.0050 (digits); fm: 0.0033 and 0.0011
        assert mse < 0.5 * mse_w, (mse, mse_w)
        mu = train.mean(0)
        far = prior.denoise(mu + 1e3 * torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)), 1e3)
    # at sigma = 1000 the exact posterior mean is the data mean; the network (trained up to sigma ~ 10,
    # conditioning clamped beyond) gets within RMSE 0.08 of it (measured, shapes; fm-shapes 0.03)
    assert float(((far - mu) ** 2).mean().sqrt()) < 0.12


def test_shipped_flow_is_invertible_and_reproduces_its_card():
    from invprior.models.tasks import bits_per_dim, dequantize

    flow = ip.zoo.load("flow-shapes")
    val = ip.data.dataset("shapes", "val")[:1000]
    z, _ = flow.forward(val[:8])
    torch.testing.assert_close(flow.inverse(z), val[:8], atol=2e-4, rtol=0)
    with torch.no_grad():
        bpd = bits_per_dim(-flow.log_prob(dequantize(val, torch.Generator().manual_seed(1234))))
    assert bpd == pytest.approx(ip.zoo.info("flow-shapes")["validation (val split, fixed seed)"]["bpd"], abs=1e-3)


@pytest.mark.parametrize("name", ["vae-shapes", "gan-shapes"])
def test_shipped_latent_generators(name):
    g = ip.zoo.load(name)
    assert isinstance(g, ip.priors.LatentGenerator)
    x = g.sample(16, seed=0)
    assert x.shape == (16, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    torch.testing.assert_close(g.sample(16, seed=0), x)  # same seed, same samples
    card = ip.zoo.info(name)["validation (val split, fixed seed)"]
    if name.startswith("vae"):
        assert g.has_encoder
        val = ip.data.dataset("shapes", "val")[:1000]
        with torch.no_grad():
            recon = g(g.encode(val))
        psnr_all = 10 * math.log10(1.0 / float(((recon - val) ** 2).mean()))  # the card's PSNR of the pooled MSE
        assert psnr_all == pytest.approx(card["recon_psnr"], abs=1e-3)
    else:
        assert not g.has_encoder


def test_shipped_classifiers_separate_their_classes():
    for data in ("shapes", "digits"):
        net = ip.zoo.load(f"classifier-{data}")
        x, y = ip.data.dataset(data, "test", with_labels=True)
        with torch.no_grad():
            acc = float((net(x).argmax(1) == y).float().mean())
        assert acc > 0.8, (data, acc)


def test_shipped_natural_diffusion_denoises_test_crops_at_any_size():
    """diffusion-natural (issue 17's prior, trained on train-split crops): on 64 test-split crops it removes
    sigma = 0.1 noise to > 28 dB (measured 31.0 against 20.4 noisy), and being fully convolutional it runs
    on a 40 x 72 image."""
    prior = ip.zoo.load("diffusion-natural")
    card = ip.zoo.info("diffusion-natural")
    assert card["data"] == "natural" and card["command"].startswith("invprior train diffusion --data natural")
    x = ip.data.dataset("natural", "test")[:64]
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert ip.eval.psnr(prior.denoise(noisy, 0.1).clamp(0, 1), x) > 28
        img = ip.data.image("camera", size=(40, 72))
        assert prior.denoise(img, 0.1).shape == (1, 1, 40, 72)


@pytest.mark.parametrize(("name", "floors"), [("e2e-shapes", (20.5, 22.5)), ("cfm-shapes", (20.5, 22.5)),
                                              ("e2e-digits", (24.5, 26.5)), ("cfm-digits", (24.5, 26.5))])  # fmt: skip
def test_shipped_conditional_models_reconstruct_test_images_of_their_family(name, floors):
    """Fixed seeds: 8 test images, noise 0.05. Measured on inpainting / MRI x4: shapes e2e 21.9 / 24.0
    dB, cfm 21.8 / 23.5 (the pseudo-inverse 7.6 / 15.6); digits e2e 25.9 / 27.9, cfm 26.7 / 28.2 (12.4 / 17.2)."""
    m = ip.zoo.load(name)
    x = ip.data.dataset(name.split("-")[1], "test")[:8].double()
    for A, floor in ((ip.operators.Inpainting.random(x.shape, 0.7, seed=0), floors[0]),
                     (ip.operators.MRI.cartesian(x.shape, 4, seed=0), floors[1])):  # fmt: skip
        problem = ip.simulate(A, x, 0.05, seed=0)
        opts = {"n_samples": 4, "steps": 10} if m.kind == "cfm" else {}
        r = ip.solve(problem, m, method=m.kind, **opts)
        assert ip.eval.psnr(r.mean.clamp(0, 1), x) > floor, (name, A.name)


def test_bench_zoo_refuses_a_model_it_cannot_score_before_sampling():
    from invprior.eval import bench_zoo

    with pytest.raises(ip.InvpriorError, match=r"cfm-digits is a cfm model of digits.*bench challenge"):
        bench_zoo.run(["cfm-digits"], 10, None)
    with pytest.raises(ip.InvpriorError, match="bench zoo --nfe scores diffusion/fm models"):
        bench_zoo.nfe_sweep(["vae-digits"], [4])


@pytest.mark.parametrize("data", ["shapes", "digits"])
def test_shipped_autoencoders_round_trip_within_their_card(data):
    """Encode/decode of test images at the card's PSNR (measured on the whole test split)."""
    ae = ip.zoo.load(f"ae-{data}")
    card = ip.zoo.info(f"ae-{data}")["quality (invprior bench zoo, test split)"]
    x = ip.data.dataset(data, "test")[:500]
    with torch.no_grad():
        mu, _ = ae.encode(x)
        rec = ae.decode(mu).clamp(0, 1)
    assert tuple(mu.shape[1:]) == (4, 7, 7) == tuple(card["latent shape"])
    assert ip.eval.psnr(rec, x) > max(28.0, card["test recon PSNR"] - 0.5)
    assert float(ae.latent_std) == pytest.approx(card["latent_std"], abs=1e-3)


def test_shipped_latent_diffusion_samples_and_reconstructs():
    """ldm-shapes with its autoencoder: samples in range; on 70% inpainting of 4 test images (noise
    0.05) resample and psld beat the pseudo-inverse by far (measured: 20.0 and 15.3 dB vs 7.1)."""
    ldm = ip.zoo.load("ldm-shapes")
    assert isinstance(ldm, ip.priors.LatentDiffusion) and ldm.latent_shape == (4, 7, 7) and ldm.shape == (1, 28, 28)
    with torch.no_grad():
        s = ldm.sample(8, steps=10, seed=0)
    assert s.shape == (8, 1, 28, 28) and float(s.min()) > -0.3 and float(s.max()) < 1.3
    x = ip.data.dataset("shapes", "test")[:4].double()
    problem = ip.simulate(ip.operators.Inpainting.random(x.shape, 0.7, seed=0), x, 0.05, seed=0)
    r = ip.solve(problem, ldm, method="resample", steps=20, every=2, n_samples=2, seed=0)
    assert ip.eval.psnr(r.mean.clamp(0, 1), x) > 18.5
    assert max(r.diagnostics.chi2) < 1.2
    r = ip.solve(problem, ldm, method="psld", steps=30, n_samples=2, seed=0)
    assert ip.eval.psnr(r.mean.clamp(0, 1), x) > 13.5


def test_natural_diffusion_limits_and_any_shape_in_grey_and_colour():
    """diffusion-natural: D(x, sigma) -> x as sigma -> 0 and -> the data mean as sigma -> infinity (within
    the network's accuracy); a sampler runs on a non-square 40x56 image in grey and in colour (per
    channel) and keeps its shape; a prior that is not fully convolutional refuses another shape."""
    prior = ip.zoo.load("diffusion-natural")
    assert prior.any_size and prior.shape == (1, 64, 64)
    x = ip.data.dataset("natural", "test")[:8]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        small = prior.denoise(x + 1e-3 * torch.randn(x.shape, generator=g), 1e-3)
        assert float((small - x).abs().max()) < 0.02
        mu = float(ip.data.dataset("natural", "train").mean())
        far = prior.denoise(mu + 1e3 * torch.randn(x.shape, generator=g), 1e3)
        # measured: mean 0.464 against the data mean 0.394 (its noise conditioning is clamped at sigma 20)
        assert abs(float(far.mean()) - mu) < 0.1 and float(far.std()) < 0.1
    for channels in (1, 3):
        img = ip.data.image("astronaut", size=(40, 56), channels=channels).double()
        problem = ip.simulate(ip.operators.Inpainting.random(tuple(img.shape[1:]), 0.5, seed=0), img, 0.02, seed=0)
        r = ip.solve(problem, prior, method="ddnm", steps=8, n_samples=2)
        assert r.samples.shape == (2, 1, channels, 40, 56) and bool(torch.isfinite(r.samples).all())
        assert ip.eval.psnr(r.mean, img) > 15
    per_channel = prior.at_shape((3, 40, 56), per_channel=True)
    z = torch.rand(2, 3, 40, 56)
    with torch.no_grad():  # per channel: channel c of the colour output is the grey model on channel c
        torch.testing.assert_close(
            per_channel.denoise(z, 0.1)[:, 1:2], prior.at_shape((1, 40, 56)).denoise(z[:, 1:2], 0.1)
        )
    with pytest.raises(ip.InvpriorError, match="not fully convolutional"):
        ip.zoo.load("diffusion-shapes").at_shape((1, 40, 56))


@pytest.mark.filterwarnings("ignore:pigdm.*trust flag")  # 4 steps: a poor data fit, flagged
def test_colour_images_run_on_the_rgb_sibling_which_denoises_colour_better_than_the_grey_model_per_channel():
    """diffusion-natural hands colour images to diffusion-natural-colour (its card says so); on 8 colourful
    test crops at sigma 0.1 the RGB model beats the grey one run per channel (64 crops,
    scripts/colour_card.py: 31.33 against 30.64 dB). A patch-assembled prior stays patch-assembled."""
    prior = ip.zoo.load("diffusion-natural")
    colour = prior.at_shape((3, 40, 56))
    assert colour.name == "diffusion-natural-colour" and colour.shape == (3, 40, 56)
    assert prior.at_shape((3, 8, 8)).module is colour.module  # loaded once
    assert prior.patches(32).at_shape((3, 40, 56)).name == "diffusion-natural-colour-patches32"
    x = ip.data.dataset("natural-colour", "test")
    x = x[(x.max(1).values - x.min(1).values).mean((1, 2)) > 0.05][:8]
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rgb = ip.eval.psnr(prior.at_shape((3, 64, 64)).denoise(noisy, 0.1).clamp(0, 1), x)
        grey = ip.eval.psnr(prior.at_shape((3, 64, 64), per_channel=True).denoise(noisy, 0.1).clamp(0, 1), x)
    assert rgb > grey + 0.2, (rgb, grey)
    r = ip.solve(ip.simulate(ip.operators.Inpainting.random(tuple(x.shape[1:]), 0.5, seed=0), x[:1], 0.02), prior,
                 method="pigdm", steps=4, n_samples=2)  # fmt: skip
    assert r.samples.shape == (2, 1, 3, 64, 64)
    assert (
        r.diagnostics.extra.get("prior_card_settings") == ip.zoo.info("diffusion-natural")["sampler defaults"]["pigdm"]
    )


def test_a_prior_card_s_tuned_sampler_settings_are_defaults_the_caller_overrides():
    prior = ip.zoo.load("diffusion-natural")
    tuned = ip.zoo.info("diffusion-natural").get("sampler defaults", {})
    prior.info = {**prior.info, "sampler defaults": {"pigdm": {"data_var": 0.5}, "dps": {"no_such": 1}}}
    img = ip.data.image("camera", size=32).double()
    problem = ip.simulate(ip.operators.Inpainting.random((1, 32, 32), 0.5, seed=0), img, 0.02, seed=0)
    r = ip.solve(problem, prior, method="pigdm", steps=4, n_samples=2)
    assert r.diagnostics.extra["prior_card_settings"] == {"data_var": 0.5}
    r2 = ip.solve(problem, prior, method="pigdm", steps=4, n_samples=2, data_var=0.5)
    torch.testing.assert_close(r.samples, r2.samples)  # the same run
    r3 = ip.solve(problem, prior, method="pigdm", steps=4, n_samples=2, data_var=0.01)
    assert "prior_card_settings" not in r3.diagnostics.extra and not torch.equal(r.samples, r3.samples)
    ip.solve(problem, prior, method="dps", steps=2, n_samples=2)  # an unknown card key is not an error
    assert isinstance(tuned, dict)


def test_natural_diffusion_denoises_test_crops_as_well_as_the_shipped_denoiser():
    """On 8 test crops at sigma 0.1 within 0.5 dB of denoiser-natural (64 crops, scripts/natural_card.py:
    30.99 against 30.88 dB, BM3D 30.64)."""
    x = ip.data.dataset("natural", "test")[:8]
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = ip.eval.psnr(ip.zoo.load("diffusion-natural").denoise(noisy, 0.1).clamp(0, 1), x)
        theirs = ip.eval.psnr(ip.priors.LearnedDenoiser.pretrained()(noisy, 0.1).clamp(0, 1), x)
    assert ours > theirs - 0.5, (ours, theirs)


def test_padis_patch_assembly_is_exact_for_a_pixelwise_denoiser_and_close_for_the_natural_prior():
    from invprior.priors import Diffusion

    class Shrink:  # a pixel-wise denoiser: tiling cannot change it
        shape = (1, 16, 16)

        def denoise(self, x, sigma):
            s = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
            return x / (1 + s**2)

    whole = Diffusion.from_denoiser(Shrink(), 0.01, 10.0)
    whole.any_size = True
    x = torch.rand(2, 1, 40, 56, generator=torch.Generator().manual_seed(0))
    sig = torch.tensor([0.3, 0.7])
    for pad in ("zeros", "reflect"):
        torch.testing.assert_close(whole.patches(16, pad=pad).denoise(x, sig), whole.denoise(x, sig))
    with pytest.raises(ip.InvpriorError, match="not fully convolutional"):
        ip.zoo.load("diffusion-digits").patches(16)
    # the shipped natural prior: 32² tiles (half its training crop) on a 40x56 crop of a test photograph
    prior = ip.zoo.load("diffusion-natural")
    clean = ip.data.image("camera", 128)[..., 20:60, 30:86]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    p_whole = ip.eval.psnr(prior.at_shape((1, 40, 56)).denoise(noisy, 0.1), clean)
    tiled = prior.patches(32).at_shape((1, 40, 56))
    outs = [tiled.denoise(noisy, 0.1) for _ in range(2)]
    assert not torch.equal(outs[0], outs[1])  # a new random shift each call
    # reflect padding (the default): within 0.6 dB of the whole-image call (measured 26.6-26.9 vs 27.1)
    assert all(ip.eval.psnr(o, clean) > p_whole - 0.6 for o in outs), (p_whole, [ip.eval.psnr(o, clean) for o in outs])
