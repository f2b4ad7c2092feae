"""Operator contract tests: every operator joins the registry below with one line."""

from __future__ import annotations

import math

import pytest
import torch

import invprior as ip
from invprior.operators import (
    CT,
    MRI,
    BeerLambert,
    Blur,
    CompressedSensing,
    Gradient,
    Identity,
    Inpainting,
    LinearOperator,
    Matrix,
    PhaseRetrieval,
    SuperResolution,
)

IMG = (2, 12, 10)  # channels, H, W: odd sizes and several channels catch layout bugs

# ----- the registry: one line per operator ---------------------------------------------------------
LINEAR = {
    "identity": lambda: Identity(IMG),
    "identity-vector": lambda: Identity((7,)),
    "inpainting-random": lambda: Inpainting.random(IMG, 0.6, seed=1),
    "inpainting-box": lambda: Inpainting.box(IMG, 5),
    "blur-gaussian": lambda: Blur.gaussian(IMG, 1.3),
    "blur-motion": lambda: Blur.motion(IMG, 5, 30.0),
    "blur-kernel": lambda: Blur(IMG, torch.rand(3, 4)),
    "sr-2": lambda: SuperResolution(IMG, 2),
    "sr-3": lambda: SuperResolution((1, 9, 12), 3),
    "cs-gaussian": lambda: CompressedSensing(IMG, 40, seed=2),
    "cs-structured": lambda: CompressedSensing(IMG, 40, seed=2, kind="structured"),
    "cs-vector": lambda: CompressedSensing((9,), 5, seed=3),
    "mri": lambda: MRI.cartesian(IMG, acceleration=3, seed=4),
    "mri-asymmetric": lambda: MRI(IMG, torch.rand(12, 10, generator=torch.Generator().manual_seed(5)) > 0.5),
    "ct": lambda: CT((1, 11, 9), n_angles=13),
    "matrix-wide": lambda: Matrix(torch.randn(4, 9, generator=torch.Generator().manual_seed(6))),
    "matrix-tall": lambda: Matrix(torch.randn(9, 4, generator=torch.Generator().manual_seed(7))),
    "gradient": lambda: Gradient(IMG),
    "gradient-circular": lambda: Gradient(IMG, boundary="circular"),
    "gradient-vector": lambda: Gradient((8,)),
    "coded-fourier": lambda: PhaseRetrieval(IMG, seed=8).linear_part,
    "composed": lambda: SuperResolution(IMG, 2) @ Blur.gaussian(IMG, 1.0),
    "scaled-sum": lambda: 2.0 * Blur.gaussian(IMG, 1.0) - Identity(IMG),
    "adjoint-of-sr": lambda: SuperResolution(IMG, 2).T,
}
NONLINEAR = {
    "phase-retrieval": lambda: PhaseRetrieval(IMG, oversampling=1.5, seed=9),
    "phase-retrieval-intensity": lambda: PhaseRetrieval(IMG, seed=9, measure="intensity"),
    "beer-lambert": lambda: BeerLambert(CT((1, 11, 9), n_angles=7), mu=0.05),
    "nonlinear-composed": lambda: PhaseRetrieval(IMG, seed=9) @ Blur.gaussian(IMG, 1.0),
}
ALL = {**LINEAR, **NONLINEAR}


def _rand(shape, dtype=torch.float64, seed=0, complex_=False):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=dtype)
    if complex_:
        t = torch.complex(t, torch.randn(shape, generator=g, dtype=dtype))
    return t


def _rand_in(A, b=3, dtype=torch.float64, seed=0):
    return _rand((b, *A.in_shape), dtype, seed)


def _rand_out(A, b=3, dtype=torch.float64, seed=1):
    return _rand((b, *A.out_shape), dtype, seed, complex_=A.complex_output)


def _dot(a, b):
    return (a.conj() * b).real.sum() if (a.is_complex() or b.is_complex()) else (a * b).sum()


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_adjoint_identity(name, dtype, tol):
    A = LINEAR[name]()
    x, y = _rand_in(A, dtype=dtype), _rand_out(A, dtype=dtype)
    lhs, rhs = _dot(A(x), y), _dot(x, A.T(y))
    scale = float(A(x).abs().norm() * y.abs().norm())
    assert abs(float(lhs - rhs)) <= tol * scale


@pytest.mark.parametrize("name", LINEAR)
def test_linearity(name):
    A = LINEAR[name]()
    x, z = _rand_in(A, seed=0), _rand_in(A, seed=5)
    lhs = A(2.5 * x - 0.5 * z)
    rhs = 2.5 * A(x) - 0.5 * A(z)
    assert torch.allclose(lhs, rhs, atol=1e-10 * float(rhs.abs().max()))


@pytest.mark.parametrize("name", ALL)
def test_batching_and_dtype(name):
    A = ALL[name]()
    x = _rand_in(A, b=3, dtype=torch.float64).abs() + 0.1
    y = A(x)
    assert y.shape == (3, *A.out_shape)
    assert y.dtype == (torch.complex128 if A.complex_output else torch.float64)
    for i in range(3):
        torch.testing.assert_close(A(x[i : i + 1])[0], y[i], rtol=1e-10, atol=1e-12)
    y32 = A(x.float())
    assert y32.dtype == (torch.complex64 if A.complex_output else torch.float32)
    torch.testing.assert_close(y32.to(y.dtype), y, rtol=1e-4, atol=1e-4 * float(y.abs().max()))


@pytest.mark.parametrize("name", [n for n in LINEAR if LINEAR[n]().has_svd])
def test_svd_view(name):
    A = LINEAR[name]()
    svd = A.svd()
    x, y = _rand_in(A), _rand_out(A)
    s = svd.singular_values(x)
    assert s.shape == (A.n,) and bool((s >= 0).all())
    torch.testing.assert_close(svd.U(s * svd.Vt(x)), A(x), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(svd.V(s * svd.Ut(y)), A.T(y), rtol=1e-9, atol=1e-9)
    # V is orthogonal: it preserves norms and inverts Vt
    torch.testing.assert_close(svd.V(svd.Vt(x)), x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(svd.Vt(x).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-9, atol=0)
    # U has orthonormal columns on the support of s
    c = _rand((3, A.n)) * (s > 0)
    torch.testing.assert_close(svd.Ut(svd.U(c)), c, rtol=1e-9, atol=1e-9)
    # singular values agree with a dense SVD of A
    eye = torch.eye(A.n, dtype=torch.float64).reshape(A.n, *A.in_shape)
    M = A(eye).reshape(A.n, -1).T
    M = torch.cat([M.real, M.imag]) if M.is_complex() else M
    dense = torch.linalg.svdvals(M)
    ours = torch.sort(s, descending=True).values[: dense.numel()]
    torch.testing.assert_close(ours, dense[: ours.numel()], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", [n for n in LINEAR if LINEAR[n]().has_pinv and LINEAR[n]().pinv_exact])
def test_pinv_is_a_generalised_inverse(name):
    A = LINEAR[name]()
    x = _rand_in(A)
    Ax = A(x)
    torch.testing.assert_close(A(A.pinv(Ax)), Ax, rtol=1e-8, atol=1e-8 * float(Ax.abs().max()))
    # A^+ y lies in the row space: A^+ A A^+ = A^+
    y = _rand_out(A)
    p = A.pinv(y)
    torch.testing.assert_close(A.pinv(A(p)), p, rtol=1e-7, atol=1e-7 * float(p.abs().max()))


@pytest.mark.parametrize("name", LINEAR)
def test_prox_data_optimality(name):
    A = LINEAR[name]()
    z, y = _rand_in(A, seed=2), _rand_out(A, seed=3)
    for rho in (0.3, torch.tensor([0.1, 1.0, 7.0], dtype=torch.float64)):
        x = A.prox_data(z, y, rho, tol=1e-12, max_iter=5000)
        r = rho.reshape(-1, *([1] * len(A.in_shape))) if isinstance(rho, torch.Tensor) else rho
        grad = A.T(A(x) - y) + r * (x - z)
        scale = float(A.T(y).abs().max() + z.abs().max())
        assert float(grad.abs().max()) <= 1e-8 * scale, name


@pytest.mark.parametrize("name", LINEAR)
def test_norm_matches_largest_singular_value(name):
    A = LINEAR[name]()
    eye = torch.eye(A.n, dtype=torch.float64).reshape(A.n, *A.in_shape)
    M = A(eye).reshape(A.n, -1).T
    M = torch.cat([M.real, M.imag]) if M.is_complex() else M
    assert A.norm(tol=1e-12, max_iter=5000) == pytest.approx(float(torch.linalg.matrix_norm(M, 2)), rel=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_jvp_matches_finite_differences(name):
    A = ALL[name]()
    x = _rand_in(A, b=2).abs() + 0.2
    v = _rand_in(A, b=2, seed=3)
    h = 1e-6
    fd = (A(x + h * v) - A(x - h * v)) / (2 * h)
    jv = A.jvp(x, v)
    assert float((jv - fd).abs().max()) <= 1e-6 * (1 + float(fd.abs().max()))
    # the VJP is the adjoint of the JVP
    w = _rand_out(A, b=2, seed=4)
    assert float(_dot(jv, w)) == pytest.approx(float(_dot(v, A.vjp(x, w))), rel=1e-9, abs=1e-9)


def test_composition_shapes_are_checked():
    with pytest.raises(ip.InvpriorError, match="cannot compose"):
        Blur.gaussian((1, 8, 8), 1.0) @ SuperResolution((1, 8, 8), 2)


def test_wrong_input_shape_is_one_clear_error():
    A = Blur.gaussian((1, 16, 16), 1.0)
    with pytest.raises(ip.InvpriorError, match=r"expected \(batch, 1, 16, 16\)"):
        A(torch.zeros(1, 1, 16, 15))
    with pytest.raises(ip.InvpriorError, match="measurement"):
        A.T(torch.zeros(1, 1, 15, 16))


def test_mri_measures_the_sampled_fourier_coefficients():
    x = _rand((1, 1, 8, 8))
    A = MRI.cartesian((1, 8, 8), acceleration=2, seed=0)
    full = torch.fft.fft2(x, norm="ortho")[0, 0][A.mask]
    torch.testing.assert_close(A(x)[0], full)
    assert A.symmetric and 1.5 <= A.acceleration <= 2.7


def test_blur_is_a_convolution_with_the_kernel():
    k = torch.rand(3, 3, dtype=torch.float64)
    x = _rand((1, 1, 9, 9))
    A = Blur(x.shape, k)
    # circular convolution with the kernel centred at (1, 1), written out
    ref = torch.zeros_like(x)
    for i in range(3):
        for j in range(3):
            ref += k[i, j] * torch.roll(x, shifts=(i - 1, j - 1), dims=(2, 3))
    torch.testing.assert_close(A(x), ref)


def test_super_resolution_is_block_averaging():
    x = _rand((2, 1, 6, 6))
    y = SuperResolution(x.shape, 3)(x)
    assert float(y[0, 0, 1, 0]) == pytest.approx(float(x[0, 0, 3:6, 0:3].mean()))


def test_ct_fbp_reconstructs_a_phantom():
    x = ip.data.image("shepp_logan_phantom", 64).double()
    A = CT(x.shape, n_angles=90)
    rec = A.fbp(A(x))
    assert ip.eval.psnr(rec, x) > 20.0
    # a line integral of a constant image is the chord length
    ones = torch.ones(1, 1, 33, 33, dtype=torch.float64)
    sino = CT(ones.shape, n_angles=4)(ones)
    assert float(sino[0, 0, 0, sino.shape[-1] // 2]) == pytest.approx(33, abs=1.0)


def test_structured_cs_has_orthogonal_rows():
    A = CompressedSensing((1, 8, 8), 30, kind="structured", seed=0)
    M = A.dense()
    torch.testing.assert_close(M @ M.T, (64 / 30) * torch.eye(30, dtype=torch.float64))


def test_gaussian_cs_is_normalised():
    A = CompressedSensing((1, 16, 16), 200, seed=0)
    x = _rand((1, 1, 16, 16), seed=123)  # not seed 0: that would be A's own first row
    assert float(A(x).norm() / x.norm()) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Inpainting.random((1, 8, 8), 1.5),
        lambda: SuperResolution((1, 8, 8), 3),
        lambda: Blur.gaussian((1, 8, 8), -1.0),
        lambda: CompressedSensing((1, 4, 4), 0),
        lambda: MRI.cartesian((1, 8, 8), acceleration=0.5),
        lambda: Blur((1, 4, 4), torch.ones(9, 9)),
    ],
)
def test_bad_constructor_arguments(bad):
    with pytest.raises(ip.InvpriorError):
        bad()


def test_operator_counts_evaluations():
    A = Blur.gaussian((1, 8, 8), 1.0)
    n0 = A.evals
    x = torch.zeros(1, 1, 8, 8)
    A(x)
    A.T(x)
    assert A.evals - n0 == 2


def test_is_linear_flag():
    assert all(isinstance(f(), LinearOperator) for f in LINEAR.values())
    assert not any(isinstance(f(), LinearOperator) for f in NONLINEAR.values())
    assert math.isclose(Identity(IMG).norm(), 1.0)


def test_blur_is_differentiable_in_its_kernel():
    """Blind deblurring needs d loss / d kernel: finite differences agree (float64 gradcheck), and a
    detached kernel gives the same operator as before."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 12, 12, generator=g, dtype=torch.float64)
    y = torch.rand(2, 1, 12, 12, generator=g, dtype=torch.float64)
    k = torch.rand(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k: ((Blur(x.shape, k)(x) - y) ** 2).sum(), (k,))
    torch.testing.assert_close(Blur(x.shape, k)(x).detach(), Blur(x.shape, k.detach().numpy())(x))


def test_parametric_kernels_have_their_moments_and_gradients():
    from invprior.operators.kernels import gaussian_kernel, motion_kernel

    iso = gaussian_kernel(torch.eye(2, dtype=torch.float64) * 1.5**2, 11)
    torch.testing.assert_close(iso, Blur.gaussian((1, 32, 32), 1.5).kernel)  # the same truncated kernel
    t = torch.arange(31, dtype=torch.float64) - 15
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    cov = torch.tensor([[4.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    k = gaussian_kernel(cov, 31)
    moments = torch.tensor([[(k * yy * yy).sum(), (k * yy * xx).sum()], [(k * xx * yy).sum(), (k * xx * xx).sum()]])
    torch.testing.assert_close(moments, cov, atol=1e-3, rtol=0)
    m = motion_kernel(6.0, 0.0, 15)  # horizontal: variance L²/12 + width² along x, width² along y
    assert float(m.min()) >= 0 and abs(float(m.sum()) - 1) < 1e-12
    t15 = torch.arange(15, dtype=torch.float64) - 7
    y15, x15 = torch.meshgrid(t15, t15, indexing="ij")
    assert abs(float((m * x15**2).sum()) - (36 / 12 * 65 / 63 + 0.25)) < 0.02  # n = 64 points: L²(n+1)/(12(n-1))
    assert abs(float((m * y15**2).sum()) - 0.215) < 0.005  # a std-0.5 Gaussian sampled on integers: 0.215
    torch.testing.assert_close(motion_kernel(6.0, 90.0, 15), m.T, atol=1e-12, rtol=0)
    params = (torch.tensor(5.0, dtype=torch.float64, requires_grad=True),
              torch.tensor(30.0, dtype=torch.float64, requires_grad=True))  # fmt: skip
    assert torch.autograd.gradcheck(lambda L, a: motion_kernel(L, a, 11), params)
    c = torch.tensor([[3.0, 0.5], [0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: gaussian_kernel(c, 9), (c,))
    with pytest.raises(ip.InvpriorError, match="odd whole number"):
        gaussian_kernel(cov, 10)
    with pytest.raises(ip.InvpriorError, match="positive definite"):
        gaussian_kernel([[1.0, 2.0], [2.0, 1.0]], 9)
    with pytest.raises(ip.InvpriorError, match="motion length must be in"):
        motion_kernel(20.0, 0.0, 15)


def test_every_operator_takes_the_shape_first_and_the_old_order_warns():
    """One convention: ``Op(shape, ...)``, keyword-compatible; invprior 0.1's order still works, with a warning."""
    import warnings

    s = (1, 16, 16)
    k = torch.ones(3, 3) / 9
    mask = torch.rand(16, 16, generator=torch.Generator().manual_seed(0)) > 0.5
    new_old = [
        (lambda: Blur.gaussian(s, 1.5), lambda: Blur.gaussian(1.5, s), lambda: Blur.gaussian(sigma=1.5, shape=s)),
        (
            lambda: Blur.motion(s, 5, 30.0),
            lambda: Blur.motion(5, 30.0, s),
            lambda: Blur.motion(length=5, angle=30.0, shape=s),
        ),
        (lambda: Blur(s, k), lambda: Blur(k, s), lambda: Blur(kernel=k, shape=s)),
        (lambda: SuperResolution(s, 4), lambda: SuperResolution(4, s), lambda: SuperResolution(factor=4, shape=s)),
        (lambda: CompressedSensing(s, 40), lambda: CompressedSensing(40, s), lambda: CompressedSensing(m=40, shape=s)),
        (lambda: Inpainting(s, mask), lambda: Inpainting(mask, s), lambda: Inpainting(mask=mask)),
        (lambda: MRI(s, mask), lambda: MRI(mask, s), lambda: MRI(mask=mask)),
    ]
    x = torch.rand(2, *s, generator=torch.Generator().manual_seed(1))
    for new, old, kw in new_old:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            A, C = new(), kw()
        with pytest.warns(DeprecationWarning, match="the shape comes first"):
            B = old()
        assert A.in_shape == B.in_shape == C.in_shape == s
        assert torch.equal(A(x), B(x)) and torch.equal(A(x), C(x))
    M = torch.randn(5, 12)
    assert Matrix((3, 4), M).in_shape == (3, 4) and Matrix(M).in_shape == (12,)
    with pytest.raises(ip.InvpriorError, match="needs a mask"):
        Inpainting(s)


def test_inpainting_says_what_its_number_means():
    s = (1, 64, 64)
    a = Inpainting.random(s, missing=0.7, seed=3)
    b = Inpainting.random(s, keep=0.3, seed=3)
    assert torch.equal(a.mask, b.mask)
    assert abs(a.mask.float().mean().item() - 0.3) < 0.03  # 70% missing keeps about 30%
    assert torch.equal(Inpainting.random(s, 0.7, seed=3).mask, a.mask)  # positional: missing
    assert torch.equal(Inpainting.random(s, fraction=0.7, seed=3).mask, a.mask)  # the old name
    for bad in ({}, {"missing": 0.5, "keep": 0.5}, {"keep": 0.0}, {"missing": 1.0}):
        with pytest.raises(ip.InvpriorError):
            Inpainting.random(s, **bad)


def test_ct_system_matrix_is_the_grid_sample_operator_and_its_exact_transpose():
    shape = (2, 20, 14)
    grid, sparse = CT(shape, 25, matrix=False), CT(shape, 25, matrix=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, *shape, generator=g, dtype=torch.float64)
    y = torch.rand(3, *grid.out_shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(sparse(x), grid(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(sparse.T(y), grid.T(y), rtol=0, atol=1e-12)
    lhs, rhs = (sparse(x) * y).sum(), (x * sparse.T(y)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
    xf = x.float().requires_grad_()
    sparse(xf).sum().backward()  # autograd through the sparse product
    torch.testing.assert_close(xf.grad, grid.T(torch.ones_like(y)).float(), rtol=1e-5, atol=1e-5)
    auto = CT(shape, 25)  # matrix=None: grid_sample for three calls, then the matrix (cached or not)
    assert [auto._use_matrix(x) for _ in range(5)] == [False, False, False, True, True]
    assert not auto._use_matrix(torch.zeros(1, device="meta"))


def test_bench_operators_times_both_ct_paths_and_reports_the_matrix_memory():
    from invprior.eval import bench_operators

    rows = bench_operators.run(sizes=(32,), batches=(1,), repeats=1, budget=0.1)
    ct = {r["operator"]: r for r in rows if r["operator"].startswith("CT")}
    assert set(ct) == {"CT (180 angles), grid_sample", "CT (180 angles), sparse matrix"}
    for r in ct.values():
        assert r["forward ms"] > 0 and r["adjoint ms"] > 0
    assert "MB" in ct["CT (180 angles), sparse matrix"]["note"]
