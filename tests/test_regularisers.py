"""Regularisers: prox optimality certificates, transforms, and the denoiser contract."""

from __future__ import annotations

import pytest
import torch

import invprior as ip
from invprior.priors import DCTL1, TV, NuclearNorm, Tikhonov, WaveletL1
from invprior.priors.transforms import DCT2, Wavelet2D


def _img(seed=0, shape=(2, 1, 16, 16)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym4"])
def test_wavelet_is_orthonormal(wavelet):
    x = _img(shape=(2, 3, 32, 16))
    W = Wavelet2D(wavelet, 3)
    c = W.forward(x)
    torch.testing.assert_close(W.inverse(c), x, rtol=1e-10, atol=1e-10)
    energy = sum(float((t**2).sum()) for t in c)
    assert energy == pytest.approx(float((x**2).sum()), rel=1e-10)


def test_haar_matches_pywavelets():
    """For Haar there is no decimation-phase ambiguity: the coefficients agree with PyWavelets'
    (longer filters differ from PyWavelets' periodization by the phase of the decimation)."""
    import numpy as np
    import pywt

    x = _img(shape=(1, 1, 16, 16))
    c = Wavelet2D("haar", 2).forward(x)
    ref = pywt.wavedec2(x[0, 0].numpy(), "haar", mode="periodization", level=2)
    np.testing.assert_allclose(c[0][0, 0].numpy(), ref[0], atol=1e-10)
    for ours, theirs in zip(c[1:], ref[1:], strict=True):
        got = np.sort(np.abs(ours.ravel().numpy()))
        np.testing.assert_allclose(got, np.sort(np.abs(np.concatenate([t.ravel() for t in theirs]))), atol=1e-10)


def test_dct_matches_scipy():
    import numpy as np
    from scipy.fft import dctn

    x = _img(shape=(1, 1, 12, 10))
    np.testing.assert_allclose(DCT2().forward(x)[0, 0].numpy(), dctn(x[0, 0].numpy(), norm="ortho"), atol=1e-12)


def test_tv_prox_duality_gap_certificate():
    """An independent certificate: build the dual point from the returned x and check the gap."""
    v = _img()
    gamma = 0.15
    R = TV(1.0, tol=1e-9, max_iter=20000)
    warm: dict = {}
    x = R.prox(v, gamma, warm=warm)
    p = warm["dual"]
    D = TV.K(tuple(v.shape[1:]))
    assert float(TV._norms(p).max()) <= 1 + 1e-9  # dual feasible
    torch.testing.assert_close(x, v - gamma * D.T(p))  # primal-dual link
    primal = 0.5 * ((x - v) ** 2).flatten(1).sum(1) + gamma * R.value(x)
    dual = 0.5 * (v * v).flatten(1).sum(1) - 0.5 * ((v - gamma * D.T(p)) ** 2).flatten(1).sum(1)
    assert bool(((primal - dual) <= 1e-8 * primal).all())
    # and no random perturbation does better
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        xp = x + 1e-3 * torch.randn(x.shape, generator=g, dtype=x.dtype)
        assert bool((0.5 * ((xp - v) ** 2).flatten(1).sum(1) + gamma * R.value(xp) >= primal - 1e-9).all())


@pytest.mark.parametrize("R", [WaveletL1(1.0, "db2", 2), DCTL1(1.0)], ids=["wavelet", "dct"])
def test_transform_l1_prox_optimality(R):
    """0 ∈ x - v + tau ∂R(x), checked coefficient-wise in the orthonormal transform domain."""
    v, tau = _img(), 0.05
    x = R.prox(v, tau)
    cx, cr = R._fwd(x), R._fwd(v - x)
    for ci, ri, m in zip(cx, cr, R._penalised(cx), strict=True):
        m = m.expand_as(ci) > 0
        nz = m & (ci.abs() > 1e-12)
        z = m & (ci.abs() <= 1e-12)
        torch.testing.assert_close(ri[nz], tau * torch.sign(ci[nz]))
        assert bool((ri[z].abs() <= tau + 1e-12).all())
        assert bool((ri[~m].abs() <= 1e-12).all())  # unpenalised coefficients are untouched


def test_nuclear_norm_prox_optimality():
    """G = (v - x)/t is a subgradient of ||.||_* at x: ||G||_2 <= 1 and <G, x> = ||x||_*."""
    v, t = _img(shape=(1, 2, 12, 9)), 0.8
    R = NuclearNorm(1.0)
    x = R.prox(v, t)
    G = (v - x) / t
    assert float(torch.linalg.matrix_norm(G, 2).max()) <= 1 + 1e-10
    torch.testing.assert_close((G * x).sum((-1, -2)), torch.linalg.svdvals(x).sum(-1))
    assert float(torch.linalg.matrix_rank(x[0, 0])) < 9  # thresholding lowered the rank


def test_patch_low_rank_denoises():
    x = ip.data.image("moon", 48).double()
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    d = NuclearNorm(1.0, mode="patches").prox(noisy, 1.0)  # ~ sigma (sqrt(p²) + sqrt(group)): noise level
    assert ip.eval.psnr(d, x) > ip.eval.psnr(noisy, x) + 3.0


def test_tikhonov_prox_closed_form():
    v = _img()
    R = Tikhonov(3.0, "gradient")
    x = R.prox(v, 0.2)
    # optimality: x - v + tau w L^T L x = 0
    torch.testing.assert_close(x - v + 0.2 * R.grad(x), torch.zeros_like(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("make", [lambda: ip.priors.TVDenoiser(), lambda: ip.priors.WaveletDenoiser(),
                                  lambda: ip.priors.NLMDenoiser(), lambda: ip.priors.LowRankDenoiser()],
                         ids=["tv", "wavelet", "nlm", "lowrank"])  # fmt: skip
def test_classical_denoisers_denoise(make):
    D = make()
    x = ip.data.image("moon", 64).double()
    for s in (0.05, 0.1):
        noisy = x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
        out = D(noisy, s)
        assert out.shape == x.shape
        assert ip.eval.psnr(out, x) > ip.eval.psnr(noisy, x) + 3.0
    two = D(torch.cat([noisy, noisy]), torch.tensor([0.05, 0.1]))  # per-image noise levels
    assert two.shape == (2, 1, 64, 64)


def test_bm3d_missing_or_present():
    try:
        import bm3d  # noqa: F401
    except ImportError:
        with pytest.raises(ip.InvpriorError, match="pip install 'invprior\\[bm3d\\]'"):
            ip.priors.BM3DDenoiser()
        return
    x = ip.data.image("moon", 64).double()
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    assert ip.eval.psnr(ip.priors.BM3DDenoiser()(noisy, 0.1), x) > ip.eval.psnr(noisy, x) + 5.0


def test_weights_are_validated():
    with pytest.raises(ip.InvpriorError, match="weight"):
        TV(-1.0)
    with pytest.raises(ip.InvpriorError, match="auto"):
        TV("often")
    with pytest.raises(ip.InvpriorError, match=r"resolved by ip\.solve"):
        TV("auto").value(_img())


def test_sparsity_weights_are_relative_to_the_noise_and_a_first_guess_of_one_is_good():
    """TV/wavelet weights act as weight / sigma in ip.solve (docs/results/weight-scale.md: the best
    noise-relative weight stays in ~0.2-2 from sigma 0.01 to 0.1, the absolute one moves 20x)."""
    x = ip.data.image("camera", 64).double()
    for sigma in (0.01, 0.1):
        p = ip.simulate(ip.operators.Blur.gaussian(x.shape, 1.5), x, sigma, seed=0)
        r = ip.solve(p, TV(), method="pdhg")  # the default weight, 1
        same = ip.solvers.get("pdhg").fn(p, TV(1.0 / sigma))  # the absolute weight it stands for
        torch.testing.assert_close(r.mean, same.mean)
        assert ip.eval.psnr(r.mean, x) > ip.eval.psnr(p.y, x) + 1.5
    bound = WaveletL1(0.5).for_noise(0.02)
    assert bound.w == pytest.approx(25.0) and bound.for_noise(0.5) is bound  # binding happens once
    assert "for noise sigma 0.02" in repr(bound)
    assert ip.priors.Tikhonov(3.0).for_noise(0.02).w == 3.0  # a precision: absolute
    assert TV(2.0).w == 2.0  # on its own (prox, value): weight · TV
