"""The ``invprior`` command line: methods, solve, demo, bench."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import typer
from tqdm import tqdm

from ._errors import InvpriorError

app = typer.Typer(
    help="invprior: solve inverse problems y = A(x) + n with priors, offline on a CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks: print tables and write them with their figures and command to --out (default bench-out/; "
    "the shipped tables are docs/results/: name it with --out docs/results to update them).",
    no_args_is_help=True,
)
BENCH_OUT = Path("bench-out")
OUT_HELP = "Output folder (default bench-out/; docs/results holds the shipped tables). "
app.add_typer(bench_app, name="bench")
train_app = typer.Typer(
    help="Train the models we ship (checkpointed; re-run the same command to resume).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"invprior {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """invprior: solve inverse problems y = A(x) + n with priors, offline on a CPU."""


def _make_prior(name: str, case: str, weight: str | None):
    """A prior from its CLI name; ``weight`` may be a number, ``auto`` or None (the tuned default)."""
    from . import priors as P
    from .eval.cases import regulariser_default, tikhonov_default

    w: float | str | None = None
    if weight is not None:
        try:
            w = "auto" if weight == "auto" else float(weight)
        except ValueError:
            raise InvpriorError(f"--weight takes a number or 'auto', got {weight!r}") from None
    regs = {
        "tikhonov": lambda: P.Tikhonov(w if w is not None else tikhonov_default(case, "gradient"), kind="gradient"),
        "tikhonov-identity": lambda: P.Tikhonov(
            w if w is not None else tikhonov_default(case, "identity"), kind="identity", center=0.5
        ),
        "tv": lambda: P.TV(w if w is not None else regulariser_default(case, "tv")),
        "wavelet": lambda: P.WaveletL1(w if w is not None else regulariser_default(case, "wavelet")),
        "dct": lambda: P.DCTL1(w if w is not None else regulariser_default(case, "wavelet")),
        "lowrank": lambda: P.NuclearNorm(w if w is not None else 8.0, mode="patches"),  # weight-scale.md
        "tv-denoiser": P.TVDenoiser,
        "wavelet-denoiser": P.WaveletDenoiser,
        "nlm": P.NLMDenoiser,
        "lowrank-denoiser": P.LowRankDenoiser,
        "bm3d": P.BM3DDenoiser,
        "learned": P.LearnedDenoiser.pretrained,
    }
    if name in regs:
        return regs[name]()
    from . import zoo

    if name.endswith(".safetensors"):
        return zoo.load_file(name)
    names = [r["name"] for r in zoo.list()]
    if name in names:
        return zoo.load(name)
    raise InvpriorError(f"unknown prior {name!r}; choose one of: {', '.join(regs)}, a zoo model ({', '.join(names)}) "
                        "or a .safetensors file")  # fmt: skip


def _say_image(name: str, x, is_file: bool, size: int | None, grey: bool, colour: bool) -> None:
    """Say what was done to the input image: size and channels are never changed silently."""
    c, h, w = x.shape[1:]
    did = []
    if size:
        did.append(f"centre-cropped and resized to {size}x{size} (--size)")
    elif not is_file and size is None:
        did.append("the shipped image at 128x128 (--size 0: native size)")
    if grey:
        did.append("converted to grey (--grey)")
    elif not is_file and not colour:
        did.append("grey (--colour: in colour)")
    typer.echo(
        f"image {name}: {h}x{w}, {'grey' if c == 1 else f'{c} channels'}" + (f"; {'; '.join(did)}" if did else "")
    )


def _sample_grid(truth, y_img, result, path: Path) -> None:
    """truth, measurement, up to 4 samples, mean, std of the first measurement."""
    from .eval.report import Panel, ReportRow, save_grid

    panels = ([Panel(truth, "truth")] if truth is not None else []) + [Panel(y_img, "measurement")]
    panels += [Panel(result.samples[i, 0], f"sample {i + 1}") for i in range(min(4, result.n_samples))]
    panels.append(Panel(result.mean[0], "mean"))
    if result.std is not None:
        std = result.std[0].mean(0, keepdim=True)  # one map over the channels
        panels.append(Panel(std, "std (mean over channels)", cmap="magma", vmin=0, vmax=None))
    save_grid([ReportRow("", panels)], path, cell=2.2)


def _set_threads(threads: int) -> None:
    """``--threads``: 0 keeps torch's default (all cores); a negative count is refused."""
    if threads < 0:
        raise InvpriorError(f"--threads must be >= 0 (0: all cores), got {threads}")
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvpriorError(f"{flag} takes a number (or 'auto' with --measurement), got {text!r}") from None


def _choices(flag: str, given: list[str], known: tuple[str, ...]) -> tuple[str, ...]:
    """The values of a repeatable option (all of ``known`` if none given), each checked."""
    bad = [g for g in given if g not in known]
    if bad:
        raise InvpriorError(f"unknown {flag} {bad}; choose from: {', '.join(known)}")
    return tuple(given) or known


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _command() -> str:
    return "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@app.command("methods")
def methods_cmd() -> None:
    """List the registered methods: name, family, needs and reference."""
    from ._table import markdown_table

    # the table the registry wrote (a test keeps it equal to the live registry): read as a file, since
    # importing invprior.solvers would load torch (~1 s)
    rows = json.loads((Path(__file__).parent / "solvers" / "methods.json").read_text())
    typer.echo(markdown_table(rows))


def _parse_params(params: list[str]) -> dict[str, float]:
    out = {}
    for p in params:
        if "=" not in p:
            _fail(f"--param takes key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            _fail(f"--param {k}: {v!r} is not a number")
    return out


@app.command("solve")
def solve_cmd(
    image: str = typer.Option(
        None,
        "--image",
        "--truth",
        help="A clean image (shipped name or file) to degrade by simulation; PSNR is "
        "reported. Default: camera (unless --measurement).",
    ),
    measurement: str = typer.Option(
        None,
        help="Reconstruct a real measurement instead: an image file (deblur, motion, sr, denoise, inpaint "
        "with --mask), a complex k-space .npy (mri) or a sinogram .npy (ct).",
    ),
    mask: str = typer.Option(None, help="With --measurement: the observed pixels (inpaint) or k-space samples (mri)."),
    kernel: str = typer.Option(
        None, help="With --measurement and deblur: the blur kernel (.npy summing to 1, or a PNG)."
    ),
    size: int = typer.Option(
        None,
        help="Centre-crop and resize to size x size (0: keep). Default: files keep their size, shipped images 128.",
    ),
    grey: bool = typer.Option(False, "--grey", help="Convert a colour image to grey (files keep their channels)."),
    colour: bool = typer.Option(False, "--colour", help="A shipped image in colour (default grey)."),
    operator: str = typer.Option(
        None, help="denoise, deblur, motion, inpaint, box, sr, mri, ct, cs, phase (default: deblur)."
    ),
    setup: str = typer.Option(
        None,
        help="A JSON or TOML file with the operator, params, noise, mask and kernel (paths relative to it); "
        "flags given on the command line win.",
    ),
    param: list[str] = typer.Option([], help="Operator parameter key=value, e.g. blur_sigma=3 (repeatable)."),
    noise: str = typer.Option(
        None,
        help="Gaussian noise sigma (default: the operator's usual level); with --measurement, required: a "
        "number or 'auto' (estimated from the image).",
    ),
    prior: str = typer.Option(
        "tikhonov",
        help="tikhonov, tikhonov-identity, tv, wavelet, dct, lowrank (regularisers); tv-denoiser, "
        "wavelet-denoiser, nlm, bm3d, learned (denoisers for pnp_admm, pnp_hqs, dpir, red, pnp_ula); "
        "any zoo model (`invprior zoo list`, e.g. diffusion-natural) or a .safetensors file of `invprior train`.",
    ),
    weight: str = typer.Option(
        None,
        help="Regulariser weight, or 'auto' (discrepancy principle); default: tuned. TV/wavelet/DCT/low-rank "
        "weights are relative to the noise level (1 is a good first guess); Tikhonov's is a precision.",
    ),
    method: str = typer.Option("tikhonov", help="A registered method (see `invprior methods`)."),
    samples: int = typer.Option(None, help="Posterior samples (samplers; default: the method's)."),
    steps: int = typer.Option(None, help="Iterations or sampler steps (default: the method's)."),
    seed: int = typer.Option(0, help="Seed of the simulated noise and of the solver."),
    threads: int = typer.Option(
        0, help="CPU threads for torch (0: all cores). Use 1 when running several jobs side by side."
    ),
    out: Path = typer.Option(None, help="Output folder (default runs/<image>-<operator>-<method>)."),
    overwrite: bool = typer.Option(
        False, help="Write into an existing folder that is not an invprior result (only the result's files)."
    ),
) -> None:
    """Simulate a measurement of an image, reconstruct it, and write images, arrays and a report.

    Samplers also write every sample, the mean, the std and grid.png (truth, measurement, samples,
    mean, std). The output folder is never wiped: an existing folder that is not an invprior result
    is refused unless --overwrite, and even then only the result's own files are written."""

    import invprior as ip

    from ._io import check_writable_result_folder, save_png
    from .eval.cases import make_case
    from .eval.demo import baseline
    from .eval.report import markdown_table, measurement_image

    _set_threads(threads)
    try:
        if grey and colour:
            raise InvpriorError("--grey and --colour contradict each other")
        params = _parse_params(param)
        if setup is not None:
            from .data.measured import load_setup

            st = load_setup(setup)
            operator = operator or st.get("operator")
            params = {**st["params"], **params}
            noise = noise if noise is not None else (None if st.get("noise") is None else str(st["noise"]))
            mask, kernel = mask or st.get("mask"), kernel or st.get("kernel")
        operator = operator or "deblur"
        if measurement is not None:
            if image is not None:
                raise InvpriorError("give --measurement (real data) or --image/--truth (a simulation), not both")
            if noise is None:
                raise InvpriorError("--measurement needs --noise SIGMA or --noise auto")
            if size:
                raise InvpriorError("--size does not apply to a measurement (resizing would change the operator)")
            name = Path(measurement).stem
            out = out or Path("runs") / f"{name}-{operator}-{method}"
            check_writable_result_folder(out, overwrite)
            from .data.measured import measured_problem

            level = noise if noise == "auto" else _number(noise, "--noise")
            problem, desc = measured_problem(
                measurement, operator, params, mask=mask, kernel=kernel, noise=level, grey=grey
            )
            A, x, sigma = problem.operator, None, float(problem.sigma)  # type: ignore[arg-type]
            how = " (estimated)" if noise == "auto" else ""
            typer.echo(f"measurement {name}: {desc}; y {tuple(problem.y.shape[1:])}, reconstructing "
                       f"{tuple(A.in_shape)}; noise sigma {sigma:.4g}{how}")  # fmt: skip
        else:
            if mask is not None or kernel is not None:
                raise InvpriorError(
                    "--mask and --kernel (flags or --setup) go with --measurement (a simulation builds its own)"
                )
            image = image or "camera"
            is_file = Path(image).suffix.lower() in (".png", ".jpg", ".jpeg", ".npy", ".tif", ".tiff", ".bmp")
            name = Path(image).stem if is_file else image
            out = out or Path("runs") / f"{name}-{operator}-{method}"
            check_writable_result_folder(out, overwrite)  # before the work, not after it
            if is_file:
                x = ip.data.load_image(image, size or None, 1 if grey else None)
            else:
                x = ip.data.image(image, 128 if size is None else (size or None), 3 if colour else 1)
            _say_image(name, x, is_file, size, grey, colour)
            A, default_sigma, desc = make_case(operator, x.shape, **params)
            if noise == "auto":
                raise InvpriorError("--noise auto is for --measurement; a simulation adds the noise it is told")
            sigma = default_sigma if noise is None else _number(noise, "--noise")
            problem = ip.simulate(A, x, sigma, seed=seed)
        pr = _make_prior(prior, operator, weight)
        allowed = ip.solvers.get(method).options()
        options = {"progress": True} if "progress" in allowed else {}
        for flag, key, value in (("--samples", "n_samples", samples), ("--steps", "steps", steps)):
            if value is not None:
                if key not in allowed:
                    raise InvpriorError(f"{method} has no {key}: {flag} does not apply to it")
                options[key] = value
        result = ip.solve(problem, pr, method=method, seed=seed, **options)
    except InvpriorError as e:
        _fail(str(e))
        return
    metrics = {
        **(
            {"PSNR": ip.eval.psnr(result.mean, x), "SSIM": ip.eval.ssim(result.mean.clamp(0, 1), x)}
            if x is not None
            else {}
        ),
        "chi2": result.diagnostics.chi2[0],
        "time s": result.diagnostics.wall_time,
    }
    w = result.diagnostics.extra.get("auto_weight", getattr(pr, "weight", None))
    wtxt = f", w={w:g}" if isinstance(w, float) else ""
    rows = [{"estimate": f"{method} ({prior}{wtxt})", **metrics}]
    if isinstance(A, ip.operators.LinearOperator):
        b, bname = baseline(problem)
        scores = {"PSNR": ip.eval.psnr(b, x), "SSIM": ip.eval.ssim(b.clamp(0, 1), x)} if x is not None else {}
        rows.append({"estimate": bname, **scores, "chi2": float(problem.chi2(b)), "time s": float("nan")})
    y_img, y_title = measurement_image(problem)
    report = [
        f"# {name}: {desc}, noise {sigma:g}",
        "",
        f"Command: `{_command()}`",
        "",
        *(
            [
                "| truth | measurement | estimate |",
                "|---|---|---|",
                "| ![](truth.png) | ![](measurement.png) | ![](mean.png) |",
            ]
            if x is not None
            else ["| measurement | estimate |", "|---|---|", "| ![](measurement.png) | ![](mean.png) |"]
        ),
        "",
        f"Measurement shown: {y_title}.",
        "",
        markdown_table(rows),
    ]

    if result.n_samples > 1:
        report += ["", f"{result.n_samples} posterior samples: grid.png (truth, measurement, samples, mean, std).",
                   "", "![](grid.png)"]  # fmt: skip

    def extra_files(tmp: Path) -> None:
        if x is not None:
            save_png(x[0], tmp / "truth.png")
        save_png(y_img, tmp / "measurement.png")
        (tmp / "report.md").write_text("\n".join(report))
        if result.n_samples > 1:
            _sample_grid(None if x is None else x[0], y_img, result, tmp / "grid.png")

    try:
        folder = result.save(
            out,
            extra={
                "image": name,
                "operator": desc,
                "noise": sigma,
                "prior": repr(pr),
                "metrics": metrics,
                "command": _command(),
            },
            overwrite=overwrite,
            extra_files=extra_files,
        )
    except InvpriorError as e:
        _fail(str(e))
        return
    typer.echo(markdown_table(rows))
    d = result.diagnostics
    if d.converged is False:
        typer.secho(
            f"warning: {method} stopped at its step limit ({d.iterations} iterations) before meeting its "
            "convergence tolerance; the estimate may not be converged",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if d.extra.get("auto_at_bound"):
        typer.secho(
            f"warning: weight 'auto' stopped at the {d.extra['auto_at_bound']} bound of its search "
            f"(w = {d.extra['auto_weight']:g}) without reaching chi2 = 1",
            fg=typer.colors.YELLOW,
            err=True,
        )
    typer.echo(f"wrote {folder}")


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), help="Output folder for the report, figures and runs."),
    size: int = typer.Option(128, help="Image size of the demo reconstructions."),
    seed: int = typer.Option(0, help="Seed of the simulated measurements."),
    overwrite: bool = typer.Option(
        False, help="Write into an existing folder that is not an invprior output (only the demo's files)."
    ),
) -> None:
    """Reconstruct held-out test images (deblurring, inpainting, MRI, CT) and sample an exact posterior.

    Writes report.md with an image grid, a metrics table, a convergence plot and a posterior plot.
    """
    from ._io import check_writable_result_folder
    from .eval.demo import DEMO_CASES, run_demo
    from .eval.report import markdown_table, write_demo_report

    check_writable_result_folder(out, overwrite)  # before the work, not after
    t0 = time.perf_counter()
    with tqdm(total=len(DEMO_CASES) + 1, desc="demo") as bar:
        demo = run_demo(size=size, seed=seed, progress=lambda name: (bar.set_postfix_str(name), bar.update()))
    report = write_demo_report(out, demo, _command(), size, overwrite=overwrite)
    typer.echo(markdown_table([m for r in demo.rows for m in r.metrics]))
    typer.echo(f"demo finished in {time.perf_counter() - t0:.1f} s; report: {report}")


@bench_app.command("operators")
def bench_operators_cmd(
    sizes: list[int] = typer.Option([256, 1024], help="Image sizes (square)."),
    batches: list[int] = typer.Option([1, 16], help="Batch sizes."),
    full: bool = typer.Option(False, help="Also run the very slow combinations (CT at 1024² x 16)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes operators.md and operators.json."),
) -> None:
    """Forward and adjoint wall time of every operator (median of repeats, float32)."""
    from .eval import bench_operators
    from .eval.report import markdown_table

    rows = bench_operators.run(tuple(sizes), tuple(batches), full=full)
    table = markdown_table(rows, ["operator", "size", "batch", "forward ms", "adjoint ms", "note"])
    typer.echo(table)
    out.mkdir(parents=True, exist_ok=True)
    md = [
        "# Operator timings",
        "",
        f"Command: `{_command()}`",
        "",
        f"Machine: {bench_operators.machine()}.",
        "Median wall time of `A(x)` and `A.T(y)` on float32 inputs, after one warm-up call.",
        "",
        table,
    ]
    (out / "operators.md").write_text("\n".join(md))
    (out / "operators.json").write_text(json.dumps(rows, indent=1, default=str))
    typer.echo(f"wrote {out / 'operators.md'}")


RAY_HELP = (
    "Run each replicate as a Ray task: --ray alone starts Ray on this machine's cores, --ray ADDRESS joins a "
    "cluster (`ray start --head`). Needs pip install -e '.\\[ray]'."
)


@bench_app.command("classical")
def bench_classical_cmd(
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes classical.md and classical.json."),
    size: int = typer.Option(128, help="Image size of the reconstructions."),
    quick: bool = typer.Option(
        False,
        help="A smoke test of every table in under a minute with --size 32: fewer iterations and images, "
        "short sampler chains, no patch low-rank runs, denoisers at --size.",
    ),
    ray: str = typer.Option(
        None, "--ray", help=RAY_HELP.replace("replicate", "reconstruction (image, operator, prior)")
    ),
    deepinv: bool = typer.Option(
        None,
        "--deepinv/--no-deepinv",
        help="The side-by-side section against deepinv (same problems, x and y). Default: run it where deepinv "
        "is installed, skip it otherwise.",
    ),
    deepinv_only: bool = typer.Option(
        False, help="Only the deepinv side by side: writes classical-deepinv.md and .json, leaves classical.md."
    ),
) -> None:
    """Classical priors and solvers on the test images, TV solver speed, denoisers, and (where deepinv is
    installed) a side by side with deepinv."""
    from .eval import bench_classical, bench_deepinv, bench_operators
    from .eval.report import markdown_table

    t0 = time.perf_counter()
    if (deepinv or deepinv_only) and not bench_deepinv.available():
        _fail(
            "deepinv is not installed here (it needs torchvision): pip install deepinv in an environment with "
            "torchvision, or run without --deepinv"
        )
    side: list[str] = []
    deepinv_rows: list[dict] = []
    if deepinv_only or (deepinv is not False and bench_deepinv.available()):
        deepinv_rows = bench_deepinv.deepinv_table(size=size, quick=quick)
        side = bench_deepinv.report(deepinv_rows, size)
        out.mkdir(parents=True, exist_ok=True)
        md = [f"Command: `{_command()}` ({time.perf_counter() - t0:.0f} s).", "",
              f"Machine: {bench_operators.machine()}.", "", *side]  # fmt: skip
        (out / "classical-deepinv.md").write_text(
            "\n".join(["# Classical benchmark: side by side with deepinv", "", *md])
        )
        (out / "classical-deepinv.json").write_text(json.dumps(deepinv_rows, indent=1, default=str))
        typer.echo("\n".join(side))
        if deepinv_only:
            typer.echo(f"wrote {out / 'classical-deepinv.md'}")
            return
    else:
        why = "--no-deepinv was given" if deepinv is False else "deepinv is not installed in this environment"
        side = ["## Side by side with deepinv", "",
                f"Skipped: {why}. `--deepinv-only` writes classical-deepinv.md where deepinv is installed "
                "(DEVELOPERS.md: a separate environment).", ""]  # fmt: skip
    speed = bench_classical.speed_table(size=size, quick=quick)
    per_method = bench_classical.methods_table(size=size, quick=quick)
    den_size = size if quick else 256
    dens = bench_classical.denoiser_table(size=den_size, quick=quick)
    try:
        recon = bench_classical.reconstruction_table(size=size, quick=quick, ray=ray)
    except InvpriorError as e:  # --ray without the extra, or an unreachable cluster
        _fail(str(e))
    tables = [
        f"## TV deblurring speed (camera {size}², Gaussian blur 2 px, noise 0.02)",
        "",
        "Iterations and wall time to come within 0.01 dB of the converged PSNR (step counts doubled from 5).",
        "",
        markdown_table(speed),
        f"## Every classical method at its defaults (camera {size}², Gaussian blur 2 px, noise 0.02)",
        "",
        "Samplers: mean per-pixel posterior std and the share of pixels inside their central 90% interval,",
        "computed from the (at most 64) saved samples.",
        "",
        markdown_table(per_method),
        f"## Denoisers on the test images ({den_size}², noise seed 0)",
        "",
        markdown_table(dens),
        f"## Reconstructions on test images ({size}², noise seed 0)",
        "",
        *(["Run on Ray: each row's time was taken beside the other tasks.", ""] if ray else []),
        markdown_table(recon, ["image", "operator", "prior", "solver", "PSNR", "SSIM", "chi2", "iterations",
                               "converged", "time s", "note"]),
        *side,
    ]  # fmt: skip
    md = ["# Classical benchmark", "", f"Command: `{_command()}` ({time.perf_counter() - t0:.0f} s).", "",
          f"Machine: {bench_operators.machine()}.", "", *tables]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "classical.md").write_text("\n".join(md))
    everything = {"speed": speed, "methods": per_method, "denoisers": dens, "recon": recon, "deepinv": deepinv_rows}
    (out / "classical.json").write_text(json.dumps(everything, indent=1, default=str))
    typer.echo("\n".join(tables))
    typer.echo(f"wrote {out / 'classical.md'}")


@train_app.command("denoiser")
def train_denoiser_cmd(
    out: Path = typer.Option(Path("runs/train-denoiser"), help="Run folder: checkpoint, log.csv (resumes if present)."),
    export: Path = typer.Option(
        None, help="Where to write the final EMA weights (default: <out>/denoiser.safetensors)."
    ),
    steps: int = typer.Option(12000, help="Optimisation steps."),
    batch: int = typer.Option(48, help="Patches per step."),
    patch: int = typer.Option(48, help="Patch side in pixels."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (cosine decay to 2% of it)."),
    sigma_max: float = typer.Option(0.2, help="Noise levels are drawn uniformly in [0, sigma_max]."),
    seed: int = typer.Option(0, help="Seed of the initialisation and the patch/noise stream."),
    bf16: bool = typer.Option(True, help="bf16 autocast (about 3x faster on CPUs with AMX/AVX512-BF16)."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
) -> None:
    """Train the noise-level-conditioned denoising UNet on train-split natural-image patches."""

    from .models.train_denoiser import DenoiserTrainConfig, train_denoiser

    _set_threads(threads)
    cfg = DenoiserTrainConfig(steps=steps, batch=batch, patch=patch, lr=lr, sigma_max=sigma_max, seed=seed, bf16=bf16)
    path = train_denoiser(out, cfg, export)
    typer.echo(f"wrote {path}")


@bench_app.command("zoo")
def bench_zoo_cmd(
    models: list[str] = typer.Option([], "--model", "-m", help="Zoo names (default: every generative model)."),
    samples: int = typer.Option(2000, help="Samples per model for the Frechet distance and the memorisation check."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes zoo.md, zoo.json and zoo/*-samples.png."),
    seed: int = typer.Option(0, help="Sampling seed."),
    nfe: list[int] = typer.Option([], "--nfe", help="Instead: FD against network evaluations (zoo-nfe.md)."),
) -> None:
    """Frechet distance to the test split (with the train-vs-test floor), bits/dim, memorisation, sample grids."""
    from .eval import bench_zoo
    from .eval.report import markdown_table

    t0 = time.perf_counter()
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if nfe:
        from . import zoo as zoo_mod

        names = models or [r["name"] for r in zoo_mod.list() if r["kind"] in ("diffusion", "fm")
                           and r["dataset"] in ("shapes", "digits")]  # fmt: skip
        rows = bench_zoo.nfe_sweep(names, sorted(nfe), samples, seed)
        table = markdown_table(rows)
        md = ["# Sample quality against network evaluations", "",
              f"Command: `{cmd}` ({time.perf_counter() - t0:.0f} s, this 2-core CPU).", "",
              (bench_zoo.nfe_sweep.__doc__ or "").strip().replace("\n    ", " "), "",
              f"FD of {samples} samples to the test split (features of the zoo classifier; lower is better).", "",
              table]  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        (out / "zoo-nfe.md").write_text("\n".join(md) + "\n")
        (out / "zoo-nfe.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
        typer.echo(table)
        typer.echo(f"wrote {out / 'zoo-nfe.md'}")
        return
    rows = bench_zoo.run(models or None, samples, out / "zoo", seed=seed)
    saved = out / "zoo.json"
    if saved.exists():  # keep the saved rows of models this run did not redo
        old = json.loads(saved.read_text())
        kept = [r for r in old["rows"] if r["model"] not in {x["model"] for x in rows}]
        if kept:
            rows = kept + rows
            cmd = f"{old['command']}`, then `{cmd}"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    table = markdown_table(rows, cols)
    md = [
        "# Zoo quality", "", f"Command: `{cmd}` ({time.perf_counter() - t0:.0f} s, this 2-core CPU).", "",
        "FD: Frechet distance of the samples to the test split in the 128 features of the zoo classifier of the "
        "same dataset (lower is better); the floor is the FD of as many train images to the test split. "
        "NN dist: pixel-space distance to the nearest train image (samples vs. test images); copies: fraction of "
        "samples nearer to a train image than 99% of test images are. bpd on the test split (dequantised 8-bit). "
        "Diffusion rows: Heun sampler, 18 steps (35 network calls per sample); denoising PSNR of D(x, 0.2) on 500 "
        "test images against the best linear (Wiener) denoiser fitted on the train split.", "",
        table, "",
        *[f"![{r['model']}](zoo/{r['model']}-samples.png)" for r in rows],
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "zoo.md").write_text("\n".join(md) + "\n")
    (out / "zoo.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    typer.echo(table)
    typer.echo(f"wrote {out / 'zoo.md'}")


def _gmm_cache_line(rows: list[dict], cache: Path | None) -> list[str]:
    """Where a cached table's replicates come from and what they cost when they ran."""
    if cache is None:
        return []
    hours = sum(r["time s"] * r["reps"] for r in rows) / 3600
    return [
        f"Replicates cached in `{cache}` (each run appends what it finishes, the next reuses it); the "
        f"sampler runs in these tables took {hours:.1f} hours of wall time when they ran. Times are those "
        "recorded then: the cache key does not see code changes that keep the samples, so after a "
        "speed-up they mix versions.", "",
    ]  # fmt: skip


@bench_app.command("gmm")
def bench_gmm_cmd(
    dims: list[int] = typer.Option([8, 80, 800], "--d", help="Dimensions d (even)."),
    dys: list[int] = typer.Option([1, 2, 4], "--dy", help="Measurement dimensions d_y."),
    reps: int = typer.Option(20, help="Replicates (prior, operator, truth and noise seeds) per (d, d_y)."),
    steps: list[int] = typer.Option([20, 100], "--steps", help="Sampler step counts."),
    samples: int = typer.Option(2000, help="Samples per run (and exact posterior draws)."),
    sampler: list[str] = typer.Option([], "--sampler", help="Restrict to these samplers (default: all)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes gmm.md / gmm.json (or a file stem with --tag)."),
    tag: str = typer.Option("", help="Suffix of the output files (gmm-TAG.md), to run configurations in parallel."),
    cache: Path = typer.Option(None, help="JSON-lines file of finished replicates: appended to, and reused."),
    ray: str = typer.Option(None, "--ray", help=RAY_HELP),
    cached_only: bool = typer.Option(False, "--cached-only", help="Run nothing: tabulate the replicates in --cache."),
    smc: bool = typer.Option(False, "--smc", help="The SMC samplers (tds, mcgdiff, fps_smc) at 16/128/1024 particles."),
) -> None:
    """Every diffusion sampler against the exact Gaussian-mixture posterior (MCGdiff protocol)."""
    from .eval import bench_gmm

    if cached_only and cache is None:
        raise typer.BadParameter("--cached-only needs --cache")
    t0 = time.perf_counter()
    names = list(sampler) + (list(bench_gmm.SMC_ROWS) if smc else [])
    try:
        rows = bench_gmm.run(
            tuple(dims), tuple(dys), reps, tuple(steps), samples, names or None, cache, cached_only, ray
        )
    except (ValueError, InvpriorError) as e:  # incl. --ray without the extra or an unreachable cluster
        _fail(str(e))
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = [
        "# Diffusion samplers against the exact Gaussian-mixture posterior", "",
        f"Command: `{cmd}` ({time.perf_counter() - t0:.0f} s on this 2-core CPU).", "",
        *_gmm_cache_line(rows, cache),
        (bench_gmm.__doc__ or "").strip(), "",
        bench_gmm.tables(rows),
    ]  # fmt: skip
    name = f"gmm-{tag}" if tag else "gmm"
    out.mkdir(parents=True, exist_ok=True)
    md.append(bench_gmm.smc_section(rows, out, out / f"{name}.png"))
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    (out / f"{name}.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    typer.echo(bench_gmm.tables(rows))
    typer.echo(f"wrote {out / (name + '.md')}")


@bench_app.command("diffusion")
def bench_diffusion_cmd(
    data: list[str] = typer.Option(["shapes", "digits"], "--data", help="Datasets (their zoo diffusion priors)."),
    task: list[str] = typer.Option([], "--task", help="Tasks (default: inpaint box deblur sr4 mri4 cs)."),
    sampler: list[str] = typer.Option([], "--sampler", help="Samplers (default: all nine; SMC rows: tds@x1 ...)."),
    smc: bool = typer.Option(False, "--smc", help="Only the SMC rows at 1x and 4x the budget (merged into the table)."),
    latent: bool = typer.Option(False, "--latent", help="Only the latent-diffusion rows (ldm-DATA; merged)."),
    images: int = typer.Option(8, help="Test images per dataset."),
    samples: int = typer.Option(16, help="Posterior samples per image."),
    noise: float = typer.Option(0.05, help="Measurement noise sigma_y."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes diffusion.md/json and diffusion/*.png."),
    ray: str = typer.Option(None, "--ray", help=RAY_HELP.replace("replicate", "(data, task, sampler) cell")),
) -> None:
    """Every diffusion sampler at its defaults on the shapes/digits test images, with image grids."""
    from .eval import bench_diffusion
    from .eval.report import markdown_table

    t0 = time.perf_counter()
    names = tuple(sampler) or tuple(
        bench_diffusion.SMC_SAMPLERS if smc else bench_diffusion.LATENT_SAMPLERS if latent else bench_diffusion.SAMPLERS
    )
    try:
        rows = bench_diffusion.run(tuple(data), tuple(task or bench_diffusion.TASKS), names, images, samples, noise,
                                   out / "diffusion", ray=ray)  # fmt: skip
    except InvpriorError as e:  # --ray without the extra, or an unreachable cluster
        _fail(str(e))
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cols = ["data", "task", "sampler", "PSNR", "SSIM", "chi2", "std", "cover90", "NFE", "time s", "error"]
    took = f"({time.perf_counter() - t0:.0f} s on this 2-core CPU)"
    saved = out / "diffusion.json"
    if saved.exists():  # keep the saved rows this run did not redo
        old = json.loads(saved.read_text())
        redone = {(r["data"], r["task"], r["sampler"]) for r in rows}
        kept = [r for r in old["rows"] if (r["data"], r["task"], r["sampler"]) not in redone]
        if kept:
            rows = kept + rows
            data = list(dict.fromkeys([*(r["data"] for r in kept), *data]))
            cmd, took = f"{old['command']}`, then `{cmd}", f"(this run {took[1:]}"
    md = ["# Diffusion samplers on images", "", f"Command: `{cmd}` {took}.",
          "", (bench_diffusion.__doc__ or "").strip(), "", markdown_table(rows, cols), ""]  # fmt: skip
    for d in data:
        for t in task or bench_diffusion.TASKS:
            md += [
                f"![{d}-{t}{s}](diffusion/{d}-{t}{s}.png)"
                for s in ("", "-smc", "-latent")
                if (out / "diffusion" / f"{d}-{t}{s}.png").exists()
            ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "diffusion.md").write_text("\n".join(md) + "\n")
    (out / "diffusion.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1, default=str))
    typer.echo(markdown_table(rows, cols))
    typer.echo(f"wrote {out / 'diffusion.md'}")


@bench_app.command("csgm")
def bench_csgm_cmd(
    data: list[str] = typer.Option(["shapes", "digits"], "--data", help="Datasets (their zoo diffusion priors)."),
    task: list[str] = typer.Option([], "--task", help="Tasks of bench diffusion (default: inpaint box sr4 mri4)."),
    budget: list[int] = typer.Option([], "--budget", help="Network evaluations per chain (default: 400 1600)."),
    images: int = typer.Option(4, help="Test images per dataset."),
    chains: int = typer.Option(4, help="Posterior samples (dps, pigdm) or restarts (csgm_diffusion)."),
    k: int = typer.Option(10, "--k", help="Sampler steps K of csgm_diffusion."),
    memory_k: list[int] = typer.Option([], "--memory-k", help="K values of the memory table (default: 10 25 50 100)."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes csgm-diffusion.md and .json."),
) -> None:
    """CSGM through a diffusion sampler vs DPS and PiGDM at equal network evaluations; its memory against K."""

    from .eval import bench_csgm
    from .eval.report import markdown_table

    _set_threads(threads)
    t0 = time.perf_counter()
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    mem = bench_csgm.peak_memory(memory_k or [10, 25, 50, 100])
    tasks = tuple(task or ("inpaint", "box", "sr4", "mri4"))
    rows = bench_csgm.compare(tuple(data), tasks, tuple(budget or (400, 1600)), images, chains, k)
    took = f"({time.perf_counter() - t0:.0f} s on this 2-core CPU)"
    md = ["# CSGM through a diffusion sampler", "", f"Command: `{cmd}` {took}.", "",
          (bench_csgm.__doc__ or "").strip(), "", "## Peak memory of one objective pass against K", "",
          markdown_table(mem), "", "## Against DPS and PiGDM at equal network evaluations", "",
          markdown_table(rows), ""]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "csgm-diffusion.md").write_text("\n".join(md) + "\n")
    (out / "csgm-diffusion.json").write_text(json.dumps({"command": cmd, "memory": mem, "rows": rows}, indent=1))
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {out / 'csgm-diffusion.md'}")


@bench_app.command("blind")
def bench_blind_cmd(
    data: list[str] = typer.Option([], "--data", help="shapes, digits (zoo diffusion priors), natural (TV only)."),
    method: list[str] = typer.Option([], "--method", help="Rows, e.g. 'blind_dps (learned)' (default: all)."),
    images: int = typer.Option(6, help="Test images per dataset."),
    samples: int = typer.Option(4, help="Posterior samples of the blind samplers."),
    steps: int = typer.Option(100, help="Sampler steps."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes blind.md, blind.json and the figures."),
) -> None:
    """Blind deblurring: image PSNR/SSIM, kernel error, fit chi2 and time against the non-blind oracle."""

    from .eval import bench_blind
    from .eval.report import markdown_table

    labels = _choices("--method", method, tuple(bench_blind.METHODS))
    datas = _choices("--data", data, ("shapes", "digits", "natural"))
    if images < 1 or samples < 1 or steps < 2:
        raise InvpriorError("--images and --samples must be >= 1 and --steps >= 2")
    _set_threads(threads)
    t0 = time.perf_counter()
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)
    rows = bench_blind.bench(datas, labels, images, samples, steps, out)
    took = f"({time.perf_counter() - t0:.0f} s on this 2-core CPU)"
    figs = [f"![{d}](blind-{d}.png)" for d in datas if (out / f"blind-{d}.png").exists()]
    md = ["# Blind deblurring", "", f"Command: `{cmd}` {took}.", "", (bench_blind.__doc__ or "").strip(), "",
          markdown_table(rows), "", *figs, ""]  # fmt: skip
    (out / "blind.md").write_text("\n".join(md) + "\n")
    (out / "blind.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {out / 'blind.md'}")


@bench_app.command("natural")
def bench_natural_cmd(
    image: list[str] = typer.Option([], "--image", help="Test photographs (default: four of them)."),
    task: list[str] = typer.Option([], "--task", help="inpaint70 box deblur sr4 mri4 (default: all)."),
    method: list[str] = typer.Option([], "--method", help="Rows (default: TV, DPIR, PnP-ADMM, six samplers)."),
    size: int = typer.Option(128, help="Image side."),
    steps: int = typer.Option(100, help="Sampler steps."),
    samples: int = typer.Option(4, help="Posterior samples per image."),
    channels: int = typer.Option(1, help="1: grey photographs; 3: colour (default images astronaut, grace_hopper)."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes natural.md/.json/.jsonl and the figures."),
) -> None:
    """Diffusion samplers with diffusion-natural beside TV, DPIR and PnP-ADMM on the test photographs."""

    from .eval import bench_natural
    from .eval.report import markdown_table

    if channels not in (1, 3):
        raise InvpriorError(f"--channels must be 1 (grey) or 3 (colour), got {channels}")
    images = tuple(image or (bench_natural.IMAGES if channels == 1 else bench_natural.COLOUR_IMAGES))
    tasks = _choices("--task", task, tuple(bench_natural.TASKS))
    methods = _choices("--method", method, bench_natural.METHODS)
    if size < 16 or steps < 2 or samples < 1:
        raise InvpriorError("--size must be >= 16, --steps >= 2 and --samples >= 1")
    _set_threads(threads)
    t0 = time.perf_counter()
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    bench_natural.bench(images, tasks, methods, size, steps, samples, out, channels=channels)
    rows = bench_natural.report(out, cmd, f"(last run {time.perf_counter() - t0:.0f} s on this 2-core CPU)")
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {out / 'natural.md'}")


@bench_app.command("challenge")
def bench_challenge_cmd(
    condition: list[str] = typer.Option([], "--condition", help="Conditions a, b, c (default: all three)."),
    data: list[str] = typer.Option(["shapes", "digits"], "--data", help="Datasets (condition c is always digits)."),
    task: list[str] = typer.Option([], "--task", help="Tasks (default: inpaint box sr4 mri4)."),
    method: list[str] = typer.Option([], "--method", help="Methods (default: all nine rows)."),
    images: int = typer.Option(4, help="Test images per cell."),
    calibration: int = typer.Option(10, help="Validation images per cell for the recalibration (at least 10)."),
    samples: int = typer.Option(4, help="Posterior samples per image (samplers)."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes challenge.md/.html/.json and challenge/*.png."),
) -> None:
    """End-to-end vs conditional flow matching vs latent priors vs diffusion samplers, in and out of distribution."""
    import fcntl

    from .eval import bench_challenge as bc
    from .eval.report import markdown_table

    _set_threads(threads)
    bad = [c for c in condition if c not in bc.CONDITIONS]
    if bad:
        raise InvpriorError(f"--condition takes a, b or c, got {bad}")
    if calibration < 10:
        raise InvpriorError("--calibration needs at least 10 images (split-conformal widths from fewer are noise)")
    t0 = time.perf_counter()
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)

    def save(cell: list[dict], report: bool = False):  # parts may run side by side: merge under a lock
        with open(out / ".challenge.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows, full = bc.merge_rows(out, cell, cmd)
            (out / "challenge.json").write_text(json.dumps({"command": full, "rows": rows}, indent=1, default=str))
            if report:
                took = f"(this run {time.perf_counter() - t0:.0f} s on this 2-core CPU)"
                return rows, bc.write_report(rows, out, full, took)
        return rows, None

    bc.run(tuple(condition) or tuple(bc.CONDITIONS), tuple(data), tuple(task) or bc.TASKS,
           tuple(method) or bc.METHODS, images, calibration, samples, out, on_cell=save)  # fmt: skip
    rows, (md, page) = save([], report=True)
    typer.echo(markdown_table(rows, bc.COLUMNS))
    typer.echo(f"wrote {md} and {page}")


@bench_app.command("speed")
def bench_speed_cmd(
    data: str = typer.Option("shapes", help="Dataset of the zoo diffusion prior."),
    task: str = typer.Option("inpaint", help="Task (see bench diffusion)."),
    samples: int = typer.Option(16, help="Posterior samples (the network's batch)."),
    sampler: list[str] = typer.Option([], "--sampler", help="Samplers (default: the nine and the three SMC)."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes speed.md / speed.json."),
) -> None:
    """Per sampler: time per step against the time of its network calls (forward and backward)."""
    from .eval import bench_speed
    from .eval.report import markdown_table

    rows = bench_speed.run(data, task, samples, tuple(sampler) or bench_speed.DEFAULT)
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    saved = out / "speed.json"
    if sampler and saved.exists():  # keep the saved rows of the samplers not re-run
        old = json.loads(saved.read_text())
        redone = {r["sampler"] for r in rows}
        rows = [r for r in old["rows"] if r["sampler"] not in redone] + rows
        cmd = f"{old['command']}`, then `{cmd}"
    table = markdown_table(rows)
    import torch

    where = f"this 2-core CPU, {torch.get_num_threads()} torch thread(s), nothing else running"
    md = ["# Sampler overhead", "", f"Command: `{cmd}` ({where}).", "",
          (bench_speed.__doc__ or "").strip(), "", table]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text("\n".join(md) + "\n")
    (out / "speed.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    typer.echo(table)


@bench_app.command("generative-map")
def bench_generative_cmd(
    data: list[str] = typer.Option(["shapes", "digits"], "--data", help="Test splits."),
    images: int = typer.Option(8, help="Test images per dataset."),
    method: list[str] = typer.Option([], "--method", help="Re-run only these methods, merged into the saved rows."),
    out: Path = typer.Option(BENCH_OUT, help=OUT_HELP + "Writes generative-map.md/json and the PSNR-vs-m plot."),
    ray: str = typer.Option(None, "--ray", help=RAY_HELP.replace("replicate", "(data, task, method) cell")),
) -> None:
    """Classical vs generative-prior MAP on compressed sensing (m = 25..400), inpainting, SR x4."""
    from .eval import bench_generative
    from .eval.report import markdown_table

    t0 = time.perf_counter()
    saved = out / "generative-map.json"
    if method and not saved.exists():
        raise InvpriorError(f"--method merges into {saved}, which does not exist: run the full benchmark first")
    try:
        rows, rep = bench_generative.run(
            tuple(data), methods=tuple(method or bench_generative.METHODS), n_images=images, ray=ray
        )
    except InvpriorError as e:  # --ray without the extra, or an unreachable cluster
        _fail(str(e))
    cmd = "invprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    took = f"({time.perf_counter() - t0:.0f} s on this 2-core CPU)"
    if method:  # keep the other methods' rows and the earlier commands
        old = json.loads(saved.read_text())
        new_keys = {(r["data"], r["task"], r["method"]) for r in rows}
        order = {m: i for i, m in enumerate(bench_generative.METHODS)}
        tasks = {t: i for i, t in enumerate(bench_generative.TASKS)}
        rows = [r for r in old["rows"] if (r["data"], r["task"], r["method"]) not in new_keys] + rows
        rows.sort(key=lambda r: (tuple(data).index(r["data"]) if r["data"] in data else 99, tasks.get(r["task"], 99),
                                 order.get(r["method"], 99)))  # fmt: skip
        cmd = f"{old['command']}`, then `{cmd}"
        took = "(see the JSON for each run's times)"
    bench_generative.plot_cs(rows, rep, out)
    cols = ["data", "task", "method", "PSNR", "SSIM", "chi2", "obj gap", "time s", "error"]
    md = ["# Generative-prior MAP against sparsity", "", f"Command: `{cmd}` {took}.", "",
          (bench_generative.__doc__ or "").strip(), "", "## Representation error (best PSNR reachable on the truth)",
          "", markdown_table(rep), "", "## Reconstructions", "", markdown_table(rows, cols), "",
          "![PSNR vs m](generative-map-cs.png)"]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "generative-map.md").write_text("\n".join(md) + "\n")
    (out / "generative-map.json").write_text(json.dumps({"command": cmd, "rows": rows, "representation": rep},
                                                        indent=1))  # fmt: skip
    typer.echo(markdown_table(rows, cols))


zoo_app = typer.Typer(help="The shipped, trained models: list them, show a card.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def zoo_list_cmd() -> None:
    """One line per shipped model: name, kind, dataset, parameters, size, headline quality."""
    from . import zoo
    from .eval.report import markdown_table

    typer.echo(markdown_table(zoo.list(), ["name", "kind", "dataset", "parameters", "size MB", "quality"]))


@zoo_app.command("info")
def zoo_info_cmd(name: str = typer.Argument(..., help="A name from `invprior zoo list`.")) -> None:
    """The model's card: dataset, architecture, parameters, the command that reproduces it, quality."""
    from . import zoo

    typer.echo(json.dumps(zoo.info(name), indent=2))


_KIND_HELP = {
    "diffusion": "the noise-conditioned UNet of a diffusion prior (EDM loss, EMA)",
    "vae": "a convolutional VAE (encoder + decoder, Bernoulli/Gaussian likelihood)",
    "gan": "a DCGAN-style generator and discriminator (hinge loss, spectral norm)",
    "flow": "a multi-scale RealNVP normalizing flow (exact log-density)",
    "classifier": "the small classifier whose features define the Frechet distance of bench zoo",
    "e2e": "an end-to-end reconstruction UNet over the operator family of the challenge (-o tasks='[\"sr\"]' "
    "for one task)",
    "cfm": "a conditional flow-matching velocity field over the operator family of the challenge",
    "fm": "an unconditional flow-matching prior (Gaussian path; every diffusion sampler runs on it)",
    "ae": "the KL-regularised autoencoder of a latent diffusion model (latent 4x7x7; -o beta=1e-4)",
    "ldm": "a latent diffusion prior on a trained autoencoder's latents (-o autoencoder=ae-DATA, the default)",
}


def _train_kind(kind: str):
    def cmd(
        data: str = typer.Option(
            "shapes", help="Dataset: shapes, digits or natural (64x64 crops); train split, val split for the log."
        ),
        out: Path = typer.Option(
            None, help="Run folder (checkpoint, log.csv; resumes if present). Default: runs/train-KIND-DATA."
        ),
        export: Path = typer.Option(
            None, help="Where to write the final weights (default: <out>/KIND-DATA.safetensors)."
        ),
        steps: int = typer.Option(0, help="Optimisation steps (0: the kind's default)."),
        batch: int = typer.Option(64, help="Images per step."),
        lr: float = typer.Option(0.0, help="Peak learning rate (0: the kind's default); warm-up then cosine decay."),
        seed: int = typer.Option(0, help="Seed of the initialisation and the batch/noise stream."),
        bf16: bool = typer.Option(True, help="bf16 autocast where the kind supports it (faster on AMX/AVX512-BF16)."),
        threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
        option: list[str] = typer.Option([], "--option", "-o", help="Architecture option key=value (JSON value)."),
    ) -> None:

        from .data.datasets import DATASETS
        from .models.tasks import KIND_DEFAULTS, make_task
        from .models.training import TrainConfig, fit

        if data not in DATASETS:
            raise InvpriorError(f"--data must be one of {', '.join(DATASETS)}, got {data!r}")
        _set_threads(threads)
        opts = {}
        for kv in option:
            k, sep, v = kv.partition("=")
            if not sep:
                raise InvpriorError(f"--option takes key=value, got {kv!r}")
            try:
                opts[k] = json.loads(v)
            except json.JSONDecodeError:
                opts[k] = v
        d = KIND_DEFAULTS[kind]
        cfg = TrainConfig(
            kind=kind, data=data, steps=steps or d["steps"], batch=batch, lr=lr or d["lr"], ema=d.get("ema", 0.0),
            seed=seed, bf16=bf16, flip=(data != "digits"), options=opts,
        )  # fmt: skip
        out = out or Path(f"runs/train-{kind}-{data}")
        path = fit(make_task(cfg), cfg, out, export)
        typer.echo(f"wrote {path}")

    cmd.__doc__ = f"Train {_KIND_HELP[kind]}."
    return cmd


for _kind in _KIND_HELP:
    train_app.command(_kind)(_train_kind(_kind))


def _ray_flag(argv: list[str]) -> list[str]:
    """``--ray`` given without an address means a local Ray runtime: ``--ray local``."""
    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("local")
    return out


def main() -> None:
    sys.argv = _ray_flag(sys.argv)
    try:
        app()
    except InvpriorError as e:  # a user error anywhere: one clear line, no traceback
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
