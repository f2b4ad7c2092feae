"""SMC samplers (tds, mcgdiff, fps_smc) against exact posteriors and exact evidence; the particle layer."""

from __future__ import annotations

import math

import pytest
import torch

import invprior as ip
from invprior.data import GaussianMixture
from invprior.priors.diffusion import Diffusion
from invprior.solvers.sample.particles import SCHEMES, resample, run_generators

SMC = ("tds", "mcgdiff", "fps_smc")


def _gaussian_problem():
    gm = GaussianMixture(torch.ones(1), torch.tensor([[1.0, -2.0]]), torch.tensor([[2.0, 0.5], [0.5, 1.0]]))
    A = ip.operators.Matrix(torch.tensor([[1.0, 0.5]], dtype=torch.float64))
    x = gm.sample(1, 0, dtype=torch.float64)
    return gm, ip.simulate(A, x, noise=0.5, seed=0, check_range=False)


def _weighted_moments(r):
    w = torch.tensor(r.diagnostics.extra["weights"], dtype=torch.float64)[:, 0]
    s = r.samples[:, 0]
    m = (w[:, None] * s).sum(0)
    c = (w[:, None, None] * (s - m)[:, :, None] * (s - m)[:, None, :]).sum(0)
    return w, m, c


@pytest.mark.parametrize("method", SMC)
def test_gaussian_posterior_moments(method):
    """N = 4096 particles: the weighted population's mean and covariance match the exact Gaussian
    posterior (std 0.56 / 0.82) within 0.07 (Monte Carlo error ~0.02 plus the 400-step model's bias;
    measured errors <= 0.03)."""
    gm, p = _gaussian_problem()
    post = gm.posterior(p.operator, p.y, 0.5)
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    r = ip.solve(p, prior, method=method, n_samples=1, n_particles=4096, steps=400, return_particles=True)
    w, m, c = _weighted_moments(r)
    assert abs(float(w.sum()) - 1) < 1e-9
    assert torch.allclose(m, post.means[0], atol=0.07), (m, post.means[0])
    assert torch.allclose(c, post.covariances()[0], atol=0.07), (c, post.covariances()[0])
    assert torch.allclose(r.mean[0].double(), m, atol=1e-6)


def test_fps_paper_variant_overconditions():
    """The paper's FPS filter multiplies every step's emission: its covariance is too small (the
    reason ``variant='exact'`` is the default)."""
    gm, p = _gaussian_problem()
    post = gm.posterior(p.operator, p.y, 0.5)
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    r = ip.solve(p, prior, method="fps_smc", variant="paper", n_samples=1, n_particles=4096, steps=200,
                 return_particles=True)  # fmt: skip
    _, _, c = _weighted_moments(r)
    exact = post.covariances()[0]
    assert float(c[0, 0]) < float(exact[0, 0]) - 0.08
    assert math.isnan(r.diagnostics.extra["log_evidence"][0])


@pytest.mark.parametrize("method", SMC)
def test_two_modes_weights(method):
    """Two well-separated modes with exact posterior weights p and 1 - p: 400 independent runs
    (i.i.d. draws) put p of their mass on the first within 4 binomial standard errors."""
    gm = GaussianMixture(torch.tensor([0.8, 0.2]), torch.tensor([[-4.0, -4.0], [4.0, 4.0]]), 0.5)
    A = ip.operators.Matrix(torch.tensor([[0.1, -0.05]], dtype=torch.float64))
    x = gm.sample(1, 3, dtype=torch.float64)
    p = ip.simulate(A, x, noise=0.3, seed=1, check_range=False)
    post = gm.posterior(A, p.y, 0.3)
    p_first = float(post.weights[0])
    assert 0.6 < p_first < 0.95  # a real two-mode posterior
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    r = ip.solve(p, prior, method=method, n_samples=400, n_particles=32, steps=100)
    frac = float((r.samples[:, 0, 0] < 0).double().mean())
    se = math.sqrt(p_first * (1 - p_first) / 400)
    assert abs(frac - p_first) < 4 * se + 0.02, (frac, p_first)


@pytest.mark.parametrize("method", SMC)
def test_evidence_unbiased(method):
    """Over 300 runs, the mean of Z-hat (not log Z-hat) matches the exact Z within 4 standard errors
    (plus 3% for the 100-step model's own evidence), and the mean of log Z-hat is at most log Z."""
    gm, p = _gaussian_problem()
    log_z = gm.log_evidence(p.operator, p.y, 0.5)
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    r = ip.solve(p, prior, method=method, n_samples=300, n_particles=16, steps=100)
    lz = torch.tensor(r.diagnostics.extra["log_evidence_runs"][0], dtype=torch.float64)
    ratio = torch.exp(lz - log_z)
    se = float(ratio.std()) / math.sqrt(len(ratio))
    assert abs(float(ratio.mean()) - 1) < 4 * se + 0.03, (float(ratio.mean()), se)
    assert float(lz.mean()) <= log_z + 4 * float(lz.std()) / math.sqrt(len(lz)) + 0.03
    combined = r.diagnostics.extra["log_evidence"][0]
    assert combined == pytest.approx(float(torch.logsumexp(lz, 0) - math.log(len(lz))))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_resampling_unbiased(scheme):
    """Expected offspring count of particle i is N w_i, for every scheme (20,000 draws)."""
    w = torch.tensor([0.02, 0.3, 0.05, 0.13, 0.0, 0.25, 0.15, 0.1], dtype=torch.float64)
    N, R = len(w), 20000
    logw = torch.log(w.clamp_min(1e-300))[None].expand(R, N)
    anc = resample(logw, run_generators(0, 0, R), scheme)
    counts = torch.zeros(R, N, dtype=torch.float64).scatter_add_(1, anc, torch.ones(R, N, dtype=torch.float64))
    mean, se = counts.mean(0), counts.std(0) / math.sqrt(R)
    assert torch.all((mean - N * w).abs() <= 4 * se + 1e-9), (mean, N * w)
    assert int(counts[:, 4].sum()) == 0  # a zero weight has no offspring


@pytest.mark.parametrize("method", SMC)
def test_same_seed_any_chunk(method):
    gm, p = _gaussian_problem()
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    runs = [ip.solve(p, prior, method=method, n_samples=5, n_particles=8, steps=20, seed=3, chunk=c)
            for c in (1, 2, None)]  # fmt: skip
    for r in runs[1:]:
        assert torch.equal(r.samples, runs[0].samples)
        assert r.diagnostics.extra["log_evidence_runs"] == runs[0].diagnostics.extra["log_evidence_runs"]
    other = ip.solve(p, prior, method=method, n_samples=5, n_particles=8, steps=20, seed=4)
    assert not torch.equal(other.samples, runs[0].samples)


def test_tds_one_particle_is_its_proposal():
    """With n_particles = 1, TDS is its twisted proposal alone: x' = m(x) + tau² ∇log psi(x) + tau z,
    then x0 = D(x, sigma_min); written out here with the same random numbers."""
    gm, p = _gaussian_problem()
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    steps, gamma = 15, 1.0
    r = ip.solve(p, prior, method="tds", n_samples=1, n_particles=1, steps=steps, gamma=gamma, seed=5)
    g = run_generators(5, 0, 1)[0]
    sig = prior.schedule(steps).tolist()
    A, y, s2y = p.operator, p.y, 0.25
    x = sig[0] * torch.randn((1, 2), generator=g, dtype=torch.float64)

    def twist(x, sigma):
        xg = x.detach().requires_grad_(True)
        x0 = prior.denoise(xg, sigma)
        lp = -((y - A(x0)) ** 2).sum() / (2 * (s2y + gamma * sigma**2))
        return x0.detach(), torch.autograd.grad(lp, xg)[0]

    x0, grad = twist(x, sig[0])
    for k in range(steps - 1):
        s, sn = sig[k], sig[k + 1]
        a, tau2 = (sn / s) ** 2, sn**2 * (s**2 - sn**2) / s**2
        x = x0 + a * (x - x0) + tau2 * grad + math.sqrt(tau2) * torch.randn((1, 2), generator=g, dtype=torch.float64)
        x0, grad = twist(x, sn)
    assert torch.allclose(r.samples[0], x0, atol=1e-10)


def test_smc_bad_input():
    gm, p = _gaussian_problem()
    prior = Diffusion.from_denoiser(gm, 0.002, 80.0)
    with pytest.raises(ip.InvpriorError, match="n_particles"):
        ip.solve(p, prior, method="tds", n_particles=0)
    poisson = ip.operators.Problem(p.operator, p.y.abs(), ip.operators.PoissonNoise(1.0))
    for m in SMC:
        with pytest.raises(ip.InvpriorError, match="Gaussian noise"):
            ip.solve(poisson, prior, method=m)
    x = ip.data.dataset("shapes", "test")[:1]
    pr = ip.operators.PhaseRetrieval(x.shape, 2, seed=0)
    q = ip.simulate(pr, x, noise=0.05, seed=0)
    with pytest.raises(ip.InvpriorError, match="mcgdiff needs an SVD"):
        ip.solve(q, ip.zoo.load("diffusion-shapes"), method="mcgdiff")
    ct = ip.operators.CT(x.shape, 20)
    if not ct.has_svd:
        with pytest.raises(ip.InvpriorError, match="SVD"):
            ip.solve(ip.simulate(ct, x, noise=0.05), ip.zoo.load("diffusion-shapes"), method="fps_smc")
    nan_prior = Diffusion(lambda x, s: x * math.nan, 0.002, 80.0, (2,))
    for m in SMC:
        with pytest.raises(ip.solvers.NonFiniteResultError, match="step"):
            ip.solve(p, nan_prior, method=m, steps=5)
    with pytest.raises(ip.InvpriorError, match="resampling"):
        ip.solve(p, prior, method="tds", resampling="stratified")


@pytest.mark.parametrize("method", SMC)
def test_smc_on_images(method):
    """Each SMC sampler with the shipped shapes prior, 70% inpainting, 4 particles, 20 steps: above the
    back-projection (8 dB) by 3 dB. MCGdiff pins observed pixels and fits the data (chi² 0.95 measured);
    TDS and FPS-SMC pull towards the data only weakly at low noise and rely on their weights, which 4
    particles cannot do in 784 dimensions (chi² 11-12 measured; 2-5 at 16 particles and 50 steps)."""
    prior = ip.zoo.load("diffusion-shapes")
    x = ip.data.dataset("shapes", "test")[:1]
    A = ip.operators.Inpainting.random(x.shape, 0.7, seed=0)
    p = ip.simulate(A, x, noise=0.05, seed=0)
    r = ip.solve(p, prior, method=method, n_samples=2, n_particles=4, steps=20)
    assert ip.eval.psnr(r.mean, x) > ip.eval.psnr(A.pinv(p.y).clamp(0, 1), x) + 3
    assert 0.2 < r.diagnostics.chi2[0] < (3 if method == "mcgdiff" else 25)
    assert r.samples.shape == (2, 1, 1, 28, 28)
    assert math.isfinite(r.diagnostics.extra["log_evidence"][0]) or method == "tds"
