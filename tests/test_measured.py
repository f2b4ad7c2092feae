"""Measured data in (``--measurement``, ``ip.data.measured``): real degraded files reconstruct like the
simulated path, the noise estimate, and one clear error per bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import invprior as ip
from invprior.cli import app
from invprior.data.measured import estimate_noise, load_kernel, measured_problem

runner = CliRunner()


@pytest.fixture
def blurry(tmp_path):
    x = ip.data.image("camera", 64).double()
    p = ip.simulate(ip.operators.Blur.gaussian(x.shape, 1.5), x, 0.02, seed=0)
    np.save(tmp_path / "blurry.npy", p.y[0, 0].numpy())  # float .npy in [0, 1]: no quantisation
    return x, p, tmp_path


def test_a_measured_blur_reconstructs_as_the_simulation_and_the_noise_is_estimated(blurry):
    _, simulated, tmp = blurry
    assert estimate_noise(simulated.y) == pytest.approx(0.02, rel=0.15)  # measured 0.0207
    problem, desc = measured_problem(str(tmp / "blurry.npy"), "deblur", {"blur_sigma": 1.5}, noise=0.02)
    assert "measured" in desc and problem.truth is None
    a = ip.solve(problem, ip.priors.TV(0.2), method="fista").mean
    b = ip.solve(simulated, ip.priors.TV(0.2), method="fista").mean
    torch.testing.assert_close(a, b)  # the same data and operator: the same estimate


def test_cli_measurement_paths_for_inpainting_and_mri(tmp_path):
    x = ip.data.image("camera", 64).double()
    A = ip.operators.Inpainting.random(x.shape, 0.6, seed=0)
    holes = (x[0, 0] * A.mask[0]).numpy()
    Image.fromarray((holes * 255).round().astype(np.uint8)).save(tmp_path / "holes.png")
    Image.fromarray((A.mask[0].numpy() * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "inpaint"
    r = runner.invoke(app, ["solve", "--measurement", str(tmp_path / "holes.png"), "--mask", str(tmp_path / "mask.png"),
                            "--operator", "inpaint", "--noise", "0.01", "--prior", "tv", "--method", "fista",
                            "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "40% of the pixels observed (measured)" in r.output
    est = torch.from_numpy(np.load(out / "mean.npy"))
    assert ip.eval.psnr(est, x) > ip.eval.psnr(A.T(A(x)), x) + 8 and not (out / "truth.png").exists()
    M = ip.operators.MRI.cartesian(x.shape, 4, 0)
    k = np.zeros((64, 64), complex)
    k[M.mask.numpy()] = ip.simulate(M, x, 0.01, seed=0).y[0].numpy()
    np.save(tmp_path / "k.npy", k)
    out = tmp_path / "mri"
    r = runner.invoke(app, ["solve", "--measurement", str(tmp_path / "k.npy"), "--operator", "mri", "--noise", "0.01",
                            "--prior", "tv", "--method", "fista", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert ip.eval.psnr(torch.from_numpy(np.load(out / "mean.npy")), x) > 24


def test_a_measured_sinogram(tmp_path):
    x = ip.data.image("shepp_logan_phantom", 32).double()
    A = ip.operators.CT(x.shape, 30)
    np.save(tmp_path / "sino.npy", ip.simulate(A, x, 0.5, seed=0).y[0, 0].numpy())
    problem, desc = measured_problem(str(tmp_path / "sino.npy"), "ct", {"size": 32}, noise=0.5)
    assert problem.operator.in_shape == (1, 32, 32) and "30 angles" in desc
    assert ip.eval.psnr(ip.solve(problem, ip.priors.TV(5.0), method="pdhg").mean, x) > 20


def test_kernel_files(tmp_path):
    k = ip.operators.kernels.gaussian_kernel(torch.eye(2, dtype=torch.float64), 5)
    np.save(tmp_path / "k.npy", k.numpy())
    torch.testing.assert_close(load_kernel(str(tmp_path / "k.npy")), k)
    Image.fromarray((k / k.max() * 255).round().numpy().astype(np.uint8)).save(tmp_path / "k.png")
    assert float(load_kernel(str(tmp_path / "k.png")).sum()) == pytest.approx(1.0)  # a picture is normalised
    np.save(tmp_path / "bad.npy", 2 * k.numpy())
    with pytest.raises(ip.InvpriorError, match="must sum to 1"):
        load_kernel(str(tmp_path / "bad.npy"))
    np.save(tmp_path / "neg.npy", (k - 0.02).numpy() / float((k - 0.02).sum()))
    with pytest.raises(ip.InvpriorError, match="non-negative"):
        load_kernel(str(tmp_path / "neg.npy"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operator", "mri", "--noise", "auto"], "cannot be estimated from mri data"),
        (["--operator", "deblur"], "needs --noise SIGMA or --noise auto"),
        (["--operator", "inpaint", "--noise", "0.1"], "needs --mask FILE"),
        (["--operator", "deblur", "--noise", "0.1", "--mask", "MASK"], "a mask file is for --operator inpaint or mri"),
        (["--operator", "sr", "--param", "blur_sigma=2", "--noise", "0.1"], "sr on measured data takes ['factor']"),
        (["--operator", "deblur", "--noise", "0.1", "--image", "camera"], "not both"),
        (["--operator", "deblur", "--noise", "x"], "--noise takes a number"),
        (["--operator", "ct", "--noise", "0.1", "--param", "size=200"], "a 200x200 image needs at least 283 detectors"),
    ],
)
def test_measurement_bad_input_gets_one_clear_error(blurry, args, message):
    _, _, tmp = blurry
    args = [a.replace("MASK", str(tmp / "blurry.npy")) for a in args]
    r = runner.invoke(app, ["solve", "--measurement", str(tmp / "blurry.npy"), *args, "--out", str(tmp / "o")])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_a_mask_of_the_wrong_size_names_both_shapes(blurry):
    _, _, tmp = blurry
    np.save(tmp / "m.npy", np.ones((10, 10)))
    with pytest.raises(ip.InvpriorError, match=r"is \(10, 10\); the measurement needs \(64, 64\)"):
        measured_problem(str(tmp / "blurry.npy"), "inpaint", noise=0.1, mask=str(tmp / "m.npy"))


def test_a_setup_file_gives_the_operator_like_the_flags(blurry):
    """--setup deblur.toml (or .json) holds the operator, its kernel file and the noise: the same
    reconstruction as the flags; flags given beside it win."""
    x, _, tmp = blurry
    k = ip.operators.kernels.gaussian_kernel(1.5**2 * torch.eye(2, dtype=torch.float64), 9)
    y = ip.simulate(ip.operators.Blur(x.shape, k), x, 0.02, seed=0).y
    (tmp / "data").mkdir()
    np.save(tmp / "data" / "y.npy", y[0, 0].numpy())
    np.save(tmp / "data" / "kernel.npy", k.numpy())
    (tmp / "data" / "deblur.toml").write_text('operator = "deblur"\nkernel = "kernel.npy"\nnoise = 0.02\n')
    (tmp / "data" / "deblur.json").write_text('{"operator": "deblur", "kernel": "kernel.npy", "noise": "auto"}')
    common = ["solve", "--measurement", str(tmp / "data" / "y.npy"), "--prior", "tv", "--method", "pdhg"]
    flags = runner.invoke(app, [*common, "--operator", "deblur", "--kernel", str(tmp / "data" / "kernel.npy"),
                                "--noise", "0.02", "--out", str(tmp / "flags")])  # fmt: skip
    toml = runner.invoke(app, [*common, "--setup", str(tmp / "data" / "deblur.toml"), "--out", str(tmp / "toml")])
    js = runner.invoke(app, [*common, "--setup", str(tmp / "data" / "deblur.json"), "--noise", "0.02",
                             "--out", str(tmp / "json")])  # fmt: skip
    for r in (flags, toml, js):
        assert r.exit_code == 0, r.output
        assert "deblurring with the kernel of" in r.output
    a, b, c = (np.load(tmp / d / "mean.npy") for d in ("flags", "toml", "json"))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)  # --noise 0.02 on the command line beat the file's "auto"
    (tmp / "bad.toml").write_text('operator = "deblur"\nkernal = "kernel.npy"\n')
    (tmp / "bad.json").write_text('{"operator": "deblur", "params": {"blur_sigma": "two"}}')
    for bad, message in (("bad.toml", "unknown setting(s) ['kernal']"), ("bad.json", "params is a table of numbers")):
        r = runner.invoke(app, [*common, "--setup", str(tmp / bad), "--noise", "0.02", "--out", str(tmp / "x")])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
