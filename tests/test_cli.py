"""The command line, driven through typer's runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from invprior.cli import app

runner = CliRunner()


def test_help_everywhere():
    for args in ([], ["methods"], ["solve"], ["demo"], ["bench"], ["bench", "operators"]):
        r = runner.invoke(app, [*args, "--help"])
        assert r.exit_code == 0, (args, r.output)
        assert "Usage" in r.output


def test_methods_lists_the_registry():
    r = runner.invoke(app, ["methods"])
    assert r.exit_code == 0
    assert "tikhonov" in r.output and "exact" in r.output and "gaussian_mixture" in r.output


def test_solve_writes_a_result_folder(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", "--image", "camera", "--size", "32", "--operator", "inpaint", "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("mean.png", "truth.png", "measurement.png", "mean.npy", "summary.json", "report.md"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["extra"]["metrics"]["PSNR"] > 20  # 70% missing pixels, smoothness prior: ~22 dB


def test_solve_reads_a_png(tmp_path):
    a = (np.random.default_rng(0).random((24, 24)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "img.png")
    out = tmp_path / "run"
    args = ["solve", "--image", str(tmp_path / "img.png"), "--size", "0", "--operator", "deblur",
            "--param", "blur_sigma=1.5", "--out", str(out)]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert np.load(out / "mean.npy").shape == (1, 1, 24, 24)


def test_solve_keeps_a_colour_file_s_size_and_channels_and_says_so(tmp_path):
    a = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "rgb.png")
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", "--image", str(tmp_path / "rgb.png"), "--operator", "inpaint", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "image rgb: 20x28, 3 channels" in r.output
    assert np.load(out / "mean.npy").shape == (1, 3, 20, 28)
    out2 = tmp_path / "grey"
    r = runner.invoke(app, ["solve", "--image", str(tmp_path / "rgb.png"), "--grey", "--operator", "inpaint",
                            "--out", str(out2)])  # fmt: skip
    assert r.exit_code == 0 and "converted to grey (--grey)" in r.output
    assert np.load(out2 / "mean.npy").shape == (1, 1, 20, 28)


def test_solve_samples_with_a_zoo_prior_on_a_non_square_colour_image(tmp_path):
    from invprior.data import image

    a = (image("astronaut", (32, 48), channels=3)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "astro.png")
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", "--image", str(tmp_path / "astro.png"), "--operator", "inpaint",
                            "--prior", "diffusion-natural", "--method", "ddnm", "--samples", "3", "--steps", "6",
                            "--threads", "1", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert np.load(out / "samples.npy").shape == (3, 1, 3, 32, 48)
    assert (out / "grid.png").stat().st_size > 1000 and (out / "std.npy").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["extra"]["metrics"]["PSNR"] > 11  # measured 13.2 (6 steps); zero-filled ~7


@pytest.mark.parametrize(
    "args,message",
    [
        (["--image", "lena"], "unknown image 'lena'"),
        (["--operator", "blurr"], "unknown operator 'blurr'"),
        (["--prior", "tv9"], "unknown prior 'tv9'"),
        (["--method", "ddrm9"], "unknown method 'ddrm9'"),
        (["--param", "blur_sigma"], "key=value"),
        (["--param", "factor=2"], "deblur has no parameter"),
        (["--method", "exact"], "exact needs a GaussianMixture prior"),
        (["--samples", "4"], "tikhonov has no n_samples: --samples does not apply"),
        (["--grey", "--colour"], "contradict"),
        (["--prior", "diffusion-shapes", "--method", "ddnm", "--operator", "inpaint"], "makes (1, 28, 28) samples"),
    ],
)
def test_solve_bad_input_gets_one_clear_error(args, message, tmp_path):
    r = runner.invoke(app, ["solve", "--size", "16", "--out", str(tmp_path / "x"), *args])
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_demo_runs_small(tmp_path):
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--size", "32"])
    assert r.exit_code == 0, r.output
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "reconstructions.png" in report and "PSNR" in report and "TV (fista)" in report and "MYULA" in report
    assert "Posterior sampling with generative priors" in report and "Latent MAP against TV" in report
    figs = ("reconstructions.png", "gmm_posterior.png", "convergence.png", "posterior_sampling.png", "latent_map.png")
    for fig in figs:
        assert (tmp_path / "demo" / fig).exists()


@pytest.mark.parametrize(
    "args,message",
    [(["--cached-only"], "--cached-only needs --cache"), (["--sampler", "nope"], "unknown samplers")],
)  # fmt: skip
def test_bench_gmm_bad_options_get_one_clear_error(args, message):
    r = runner.invoke(app, ["bench", "gmm", *args])
    assert r.exit_code == 2 and message in " ".join(r.output.split()) and "Traceback" not in r.output


def test_bench_gmm_cached_only_writes_the_table_and_says_where_it_came_from(tmp_path):
    from invprior.eval import bench_gmm

    cache = tmp_path / "gmm.jsonl"
    bench_gmm.run(dims=(8,), dys=(1,), reps=2, steps_list=(10,), n=100, samplers=["ddrm"], cache=cache)
    args = ["bench", "gmm", "--d", "8", "--dy", "1", "--reps", "2", "--steps", "10", "--samples", "100",
            "--sampler", "ddrm", "--cache", str(cache), "--cached-only",
            "--out", str(tmp_path), "--tag", "t"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    md = (tmp_path / "gmm-t.md").read_text()
    assert f"Replicates cached in `{cache}`" in md and "hours of wall time" in md
    assert "| replicates | | 2 |" in md and "| ddrm | 10 |" in md
    assert len(cache.read_text().splitlines()) == 2  # nothing was run


def test_version_and_python_dash_m():
    import subprocess
    import sys

    from invprior import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"invprior {__version__}"
    p = subprocess.run([sys.executable, "-m", "invprior", "--version"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and p.stdout.strip() == f"invprior {__version__}"


def test_the_command_line_starts_without_importing_torch():
    """`invprior --help` used to import torch and the whole library first (2.2 s measured); the package
    now loads its submodules on first use."""
    import subprocess
    import sys

    code = "import sys, invprior.cli, invprior; invprior.InvpriorError; print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "False"


def test_methods_lists_the_live_registry_without_importing_torch():
    """`invprior methods` prints a table the registry wrote (1.3 s with the torch import, 0.2 s without);
    it must equal the live registry: after adding a method, run
    python -c "from invprior.solvers.registry import write_method_table; write_method_table()"."""
    import subprocess
    import sys

    from invprior.solvers.registry import METHOD_TABLE, method_rows

    assert json.loads(METHOD_TABLE.read_text()) == method_rows(), "methods.json is stale (see the docstring)"
    code = "import sys; from invprior.cli import main; sys.argv = ['invprior', 'methods']\ntry:\n main()\n"
    code += "except SystemExit:\n pass\nprint('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "| pigdm | sample |" in p.stdout and p.stdout.strip().endswith("False")


def test_bench_classical_quick_writes_every_table_on_a_tiny_size(tmp_path):
    """--quick reaches all four tables (it used to leave the speed, methods and denoiser tables at
    their full sizes: nothing was written in 300 s). Its wall time is reported in the note, not here."""
    r = runner.invoke(app, ["bench", "classical", "--quick", "--size", "32", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "classical.md").read_text()
    for title in ("TV deblurring speed (camera 32²", "Every classical method at its defaults (camera 32²",
                  "Denoisers on the test images (32²", "Reconstructions on test images (32²"):  # fmt: skip
        assert title in md, title
    assert "Skipped: deepinv is not installed" in md  # CI has no deepinv (it needs torchvision)
    tables = json.loads((tmp_path / "classical.json").read_text())
    assert all(tables[k] for k in ("speed", "methods", "denoisers", "recon"))
    assert {row["method"] for row in tables["methods"]} >= {"fista", "pdhg", "myula", "pnp_ula"}


def test_bench_classical_deepinv_without_deepinv_is_one_clear_error(tmp_path):
    from invprior.eval import bench_deepinv

    if bench_deepinv.available():
        pytest.skip("deepinv is installed here: the error path cannot be reached")
    for flag in ("--deepinv", "--deepinv-only"):
        r = runner.invoke(app, ["bench", "classical", flag, "--out", str(tmp_path)])
        assert r.exit_code == 2 and "deepinv is not installed" in r.output, r.output
        assert "Traceback" not in r.output
    assert not list(tmp_path.iterdir())


def test_deepinv_report_summarises_ratios_and_psnr_differences():
    from invprior.eval.bench_deepinv import report

    rows = [{"image": i, "problem": "p", "method": "TV (FISTA)", "time ratio": t, "PSNR diff": d}
            for i, t, d in (("a", 1.0, 0.1), ("b", 4.0, -0.2), ("c", 2.0, 0.0))]  # fmt: skip
    md = "\n".join(report(rows, 64))
    assert "| TV (FISTA) | 3 | 2 | 1 | 4 | -0.2 | 0.1 |" in md


def test_bench_natural_runs_colour_photographs_on_the_colour_prior_and_keeps_grey_rows_apart(tmp_path):
    args = ["bench", "natural", "--size", "32", "--task", "inpaint70", "--method", "dpir", "--method", "ddnm",
            "--steps", "3", "--samples", "2", "--threads", "1", "--out", str(tmp_path)]  # fmt: skip
    r = runner.invoke(app, [*args, "--channels", "3", "--image", "astronaut"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*args, "--image", "astronaut"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "natural.jsonl").read_text().splitlines()]
    assert {(x["channels"], x["method"], x["prior"]) for x in rows} == {
        (3, "dpir", "denoiser-natural"), (3, "ddnm", "diffusion-natural-colour"),
        (1, "dpir", "denoiser-natural"), (1, "ddnm", "diffusion-natural"),
    }  # fmt: skip
    md = (tmp_path / "natural.md").read_text()
    assert "## 32², colour (RGB)" in md and "## 32², grey" in md
    assert (tmp_path / "natural-inpaint70-32-rgb.png").stat().st_size > 1000
    assert (tmp_path / "natural-inpaint70-32.png").exists()
    r = runner.invoke(app, ["bench", "natural", "--channels", "2", "--out", str(tmp_path)])
    assert "--channels must be 1 (grey) or 3 (colour)" in str(r.exception)  # main() prints it, exit 2
