"""Hostile inputs and faults, as an adversarial new user would try them (issue 19).

Each case is ``Case(name, run, expect, match)``: ``run(tmp)`` does the hostile thing in a fresh
temporary folder; ``expect`` is what a correct library does:

- ``"error"``: raise ``InvpriorError`` (or a documented subclass) whose message names ``match``;
- ``"warn"``: finish, but warn (a ``UserWarning`` or a log record) with ``match`` in the text;
- ``"ok"``: finish and pass the case's own check (it raises ``AssertionError`` otherwise).

``verdict(case, tmp)`` classifies what happened: ``clear`` (what is expected), ``unclear`` (an
exception of another type, or a message that does not name ``match``), ``silent`` (finished
without the error or warning, or with a wrong result) or ``data loss`` (a user's file is gone or
changed). ``tests/test_hostile.py`` asserts ``clear`` for every case; ``scripts/hostile_inputs.py``
counts verdicts (run against an older checkout with ``PYTHONPATH`` for the before/after table).

The cases use only the public API, so that they run against older versions too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

import invprior as ip


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path], object]
    expect: str  # "error" | "warn" | "ok"
    match: str = ""


class DataLossError(AssertionError):
    """A user's file was deleted or changed."""


# ----- fixtures (small and fast) ---------------------------------------------------------------
@cache
def _blur_problem():
    x = ip.data.image("camera", size=16)
    A = ip.operators.Blur.gaussian(sigma=1.0, shape=x.shape)
    return ip.simulate(A, x, noise=ip.operators.GaussianNoise(0.05), seed=0)


@cache
def _shapes_problem():
    prior = ip.zoo.load("diffusion-shapes")
    x = ip.data.dataset("shapes", "test")[:1]
    A = ip.operators.Inpainting.random(x.shape, 0.5, seed=0)
    return ip.simulate(A, x, noise=ip.operators.GaussianNoise(0.05), seed=0), prior


def _gmm_problem():
    from invprior.data import GaussianMixture

    gmm = GaussianMixture.mcgdiff(8, seed=1)
    A = ip.operators.Matrix(torch.randn(2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    x = gmm.sample(1, 0, dtype=torch.float64)
    return ip.simulate(A, x, noise=0.5, seed=0, check_range=False), gmm


def _tik():
    return ip.priors.Tikhonov(weight=1.0, kind="gradient")


def _solve(method: str, prior=None, problem=None, **options):
    return ip.solve(
        problem or _blur_problem(), prior if prior is not None else ip.priors.TV(0.0025), method=method, **options
    )


def _diffusion(method: str, **options):
    p, prior = _shapes_problem()
    return ip.solve(p, prior, method=method, **options)


def _user_folder(tmp: Path) -> Path:
    d = tmp / "user"
    d.mkdir()
    (d / "thesis.txt").write_text("years of work")
    (d / "mean.png").write_bytes(b"the user's own picture")
    return d


def _check_user_folder(d: Path, names=("thesis.txt",)) -> None:
    for n, content in (("thesis.txt", "years of work"),):
        if n in names and (not (d / n).exists() or (d / n).read_text() != content):
            raise DataLossError(f"{d / n} was deleted or changed")


def _result(n: int = 3, value: float | None = None) -> ip.result.Result:
    s = torch.rand(n, 1, 1, 8, 8) if value is None else torch.full((n, 1, 1, 8, 8), value)
    return ip.result.Result.from_samples(s)


# ----- saving ----------------------------------------------------------------------------------
def _save_into_user_folder(tmp: Path):
    d = _user_folder(tmp)
    try:
        _result().save(d)
    finally:
        _check_user_folder(d)
        if (d / "mean.png").read_bytes() != b"the user's own picture":
            raise DataLossError("the user's mean.png was replaced without overwrite")


def _save_overwrite_keeps_others(tmp: Path):
    d = _user_folder(tmp)
    _result().save(d, overwrite=True)
    _check_user_folder(d)
    r = ip.result.Result.load(d)
    assert r.samples.shape == (3, 1, 1, 8, 8)
    _result(1).save(d)  # a later save replaces only the result's own files
    _check_user_folder(d)
    assert not (d / "std.npy").exists(), "the old result's std.npy survived a new point-estimate save"


def _save_onto_file(tmp: Path):
    f = tmp / "notes.txt"
    f.write_text("mine")
    try:
        _result().save(f)
    finally:
        hidden = [p for p in tmp.iterdir() if p.name.startswith(".")]
        if not f.is_file() or f.read_text() != "mine" or hidden:
            raise DataLossError(f"the file {f} was replaced or hidden ({[p.name for p in hidden]})")


def _save_twice_no_temps(tmp: Path):
    d = tmp / "run"
    _result(value=0.25).save(d)
    _result(value=0.75).save(d)
    r = ip.result.Result.load(d)
    assert float(r.mean.mean()) == 0.75
    leaked = [p.name for p in list(tmp.iterdir()) + list(d.iterdir()) if "tmp" in p.name or "old" in p.name]
    assert not leaked, f"temporary folders left behind: {leaked}"
    mode = d.stat().st_mode & 0o777
    assert mode & 0o055 == 0o055 or mode == (0o777 & ~_umask()), f"the folder has mode {oct(mode)}"


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _cli_out_dot(tmp: Path):
    import subprocess
    import sys

    d = _user_folder(tmp)
    cmd = [sys.executable, "-m", "invprior.cli", "solve", "--size", "16", "--out", "."]
    proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=300)
    _check_user_folder(d)
    if proc.returncode == 0:
        raise AssertionError("invprior solve --out . in a user's folder succeeded without --overwrite")
    err = proc.stderr.strip().splitlines()
    if len(err) != 1 or "Traceback" in proc.stderr:
        raise RuntimeError(f"not a one-line error: {proc.stderr[-500:]}")
    raise ip.InvpriorError(err[0])


# ----- weights ---------------------------------------------------------------------------------
def _copy_model(tmp: Path, name: str = "vae-shapes") -> Path:
    src = ip.zoo.path(name)
    dst = tmp / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _flipped_bytes(tmp: Path):
    f = _copy_model(tmp)
    b = bytearray(f.read_bytes())
    for k in range(len(b) - 4000, len(b) - 3000, 97):  # inside the tensor data, not the header
        b[k] ^= 0x55
    f.write_bytes(bytes(b))
    ip.zoo.load_file(f)


def _write_weights(path: Path, tensors: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})


def _nan_weights(tmp: Path):
    from safetensors.torch import load_file

    src = ip.zoo.path("vae-shapes")
    t = load_file(str(src))
    k = next(iter(t))
    t[k] = t[k].clone()
    t[k].view(-1)[0] = float("nan")
    _, meta = _read_meta(src)
    _write_weights(tmp / "mine.safetensors", t, meta)
    ip.zoo.load_file(tmp / "mine.safetensors")


def _read_meta(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return None, {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def _absurd_config(tmp: Path):
    _, meta = _read_meta(ip.zoo.path("diffusion-shapes"))
    meta["config"]["net"]["widths"] = [200_000, 400_000, 600_000]  # terabytes if built
    _write_weights(tmp / "big.safetensors", {"w": torch.zeros(1)}, meta)
    ip.zoo.load_file(tmp / "big.safetensors")


def _pickle_weights(tmp: Path):
    f = tmp / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, f)
    ip.zoo.load_file(f)


def _cardless_notice(tmp: Path):
    src = ip.zoo.path("gan-shapes")
    dst = tmp / "my-gan.safetensors"
    shutil.copy(src, dst)  # no card beside it
    prior = ip.zoo.load_file(dst)
    assert prior.latent_dim > 0


# ----- file input (CLI) ------------------------------------------------------------------------
def _npy(tmp: Path, a: np.ndarray, **kw):
    f = tmp / "img.npy"
    np.save(f, a)
    return ip.data.load_image_file(str(f), None, **kw)


def _npy_batched(tmp: Path):
    _npy(tmp, np.random.rand(2, 16, 16))


def _npy_batched4(tmp: Path):
    _npy(tmp, np.random.rand(2, 1, 16, 16))


def _npy_ambiguous(tmp: Path):
    _npy(tmp, np.random.rand(3, 16, 3))


def _npy_signed(tmp: Path):
    a = np.array([[-32768, -1], [0, 32767]], dtype=np.int16)
    x = _npy(tmp, a)
    assert abs(float(x[0, 0, 0, 0])) < 1e-6 and abs(float(x[0, 0, 1, 1]) - 1) < 1e-6, "int16 not scaled by its range"
    assert float(x[0, 0, 0, 1]) > 0.4, "negative values were clipped to 0"


def _npy_channel_first(tmp: Path):
    a = np.random.rand(3, 16, 20)
    x = _npy(tmp, a, channels=3)
    assert x.shape == (1, 3, 16, 20) and torch.allclose(x[0].double(), torch.from_numpy(a), atol=1e-6)


def _npy_channel_last(tmp: Path):
    a = np.random.rand(16, 20, 3)
    x = _npy(tmp, a, channels=3)
    assert x.shape == (1, 3, 16, 20) and torch.allclose(x[0].double(), torch.from_numpy(a).permute(2, 0, 1), atol=1e-6)


def _npy_huge_header(tmp: Path):
    f = tmp / "huge.npy"
    with open(f, "wb") as fh:  # a header that claims 10^10 pixels, and no data
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (100_000, 100_000)})
    ip.data.load_image_file(str(f))


def _png_bomb(tmp: Path):
    from PIL import Image

    f = tmp / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(f)  # 144 MP that compress to a few kB
    ip.data.load_image_file(str(f))


def _garbage_png(tmp: Path):
    f = tmp / "x.png"
    f.write_bytes(os.urandom(2000))
    ip.data.load_image_file(str(f))


def _npy_object(tmp: Path):
    f = tmp / "obj.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    ip.data.load_image_file(str(f))


# ----- silent wrong results --------------------------------------------------------------------
def _auto_at_bound(tmp: Path):
    p = _blur_problem()
    wrong = ip.operators.Problem(p.operator, p.y, ip.operators.GaussianNoise(5.0))  # noise overstated 100x
    r = ip.solve(wrong, ip.priors.Tikhonov(weight="auto"), method="tikhonov")
    assert r.diagnostics.extra.get("auto_at_bound") == "upper", "the bound is not in diagnostics.extra"


def _diverging_gd(tmp: Path):
    _solve("gd", _tik(), step=1e3, steps=50)


def _diverging_myula(tmp: Path):
    _solve("myula", step=1e3, steps=60, burn_in=10)


# fmt: off
CASES: list[Case] = [
    # solver options
    Case("admm steps=0", lambda t: _solve("admm", steps=0), "error", "steps"),
    Case("gd steps=0", lambda t: _solve("gd", _tik(), steps=0), "error", "steps"),
    Case("hqs steps=0", lambda t: _solve("hqs", steps=0), "error", "steps"),
    Case("myula steps=0", lambda t: _solve("myula", steps=0), "error", "steps"),
    Case("ula steps=0", lambda t: _solve("ula", _tik(), steps=0), "error", "steps"),
    Case("fista steps=-5", lambda t: _solve("fista", steps=-5), "error", "steps"),
    Case("pgd steps=2.5", lambda t: _solve("pgd", steps=2.5), "error", "steps"),
    Case("myula steps < burn_in", lambda t: _solve("myula", steps=10, burn_in=20), "error", "burn_in"),
    Case("ula chains=0", lambda t: _solve("ula", _tik(), chains=0), "error", "chains"),
    Case("myula thin=0", lambda t: _solve("myula", thin=0, steps=20, burn_in=5), "error", "thin"),
    Case("dps n_samples=0", lambda t: _diffusion("dps", n_samples=0, steps=5), "error", "n_samples"),
    Case("ddnm n_samples=-1", lambda t: _diffusion("ddnm", n_samples=-1, steps=5), "error", "n_samples"),
    Case("exact n_samples=0", lambda t: ip.solve(*_gmm_problem(), method="exact", n_samples=0), "error", "n_samples"),
    Case("daps steps=0", lambda t: _diffusion("daps", steps=0), "error", "steps"),
    Case("mm cg_iter=0", lambda t: _diffusion("mm", cg_iter=0, steps=5), "error", "cg_iter"),
    Case(
        "csgm restarts=0",
        lambda t: ip.solve(_shapes_problem()[0], ip.zoo.load("gan-shapes"), method="csgm", restarts=0, steps=5),
        "error",
        "restarts",
    ),
    Case("fista seed='abc'", lambda t: _solve("fista", seed="abc", steps=5), "error", "seed"),
    Case("fista seed=1.5", lambda t: _solve("fista", seed=1.5, steps=5), "error", "seed"),
    Case("fista seed=-1", lambda t: _solve("fista", seed=-1, steps=5), "error", "seed"),
    Case("fista progress='yes'", lambda t: _solve("fista", progress="yes", steps=5), "error", "progress"),
    Case("fista tol=-1", lambda t: _solve("fista", tol=-1.0, steps=5), "error", "tol"),
    Case("gd step=0", lambda t: _solve("gd", _tik(), step=0.0, steps=5), "error", "step"),
    Case("dps zeta=nan", lambda t: _diffusion("dps", zeta=math.nan, steps=5), "error", "zeta"),
    Case("ddrm eta=2", lambda t: _diffusion("ddrm", eta=2.0, steps=5), "error", "eta"),
    Case("pigdm steps=10**9", lambda t: _diffusion("pigdm", steps=10**9), "error", "steps"),
    Case("dps n_samples=10**9", lambda t: _diffusion("dps", n_samples=10**9, steps=5), "error", "n_samples"),
    Case("Tikhonov weight 0", lambda t: _solve("tikhonov", ip.priors.Tikhonov(weight=0.0)), "error", "weight"),
    Case("TV weight -1", lambda t: _solve("fista", ip.priors.TV(-1.0), steps=5), "error", "weight"),
    Case("TV weight nan", lambda t: _solve("fista", ip.priors.TV(math.nan), steps=5), "error", "weight"),
    Case("TV weight 'big'", lambda t: _solve("fista", ip.priors.TV("big"), steps=5), "error", "weight"),
    Case("fista NaN x0", lambda t: _solve("fista", x0=torch.full((1, 1, 16, 16), math.nan), steps=5), "error", "x0"),
    Case("fista x0 wrong shape", lambda t: _solve("fista", x0=torch.zeros(1, 1, 8, 8), steps=5), "error", "x0"),
    Case(
        "fista x0 float16",
        lambda t: _solve("fista", x0=torch.zeros(1, 1, 16, 16, dtype=torch.float16), steps=5),
        "error",
        "x0",
    ),
    Case(
        "ula with a diffusion prior",
        lambda t: ip.solve(*_shapes_problem(), method="ula", steps=5, burn_in=1),
        "error",
        "sigma > 0",
    ),
    Case(
        "gd with a diffusion prior", lambda t: ip.solve(*_shapes_problem(), method="gd", steps=5), "error", "sigma > 0"
    ),
    # data and shapes
    Case(
        "simulate float16 x",
        lambda t: ip.simulate(_blur_problem().operator, _blur_problem().truth.half(), 0.05),
        "error",
        "float16",
    ),
    Case(
        "Problem float16 y",
        lambda t: ip.operators.Problem(
            _blur_problem().operator, _blur_problem().y.half(), ip.operators.GaussianNoise(0.05)
        ),
        "error",
        "float16",
    ),
    Case(
        "simulate empty batch",
        lambda t: ip.simulate(_blur_problem().operator, torch.zeros(0, 1, 16, 16), 0.05),
        "error",
        "empty",
    ),
    Case(
        "Blur on 10^6 x 10^6",
        lambda t: ip.operators.Blur.gaussian(sigma=1.0, shape=(1, 1, 10**6, 10**6)),
        "error",
        "memory",
    ),
    Case(
        "Inpainting on a 0-size image", lambda t: ip.operators.Inpainting.random((1, 1, 0, 16), 0.5), "error", ">= 1"
    ),
    Case("image size 10^7", lambda t: ip.data.image("camera", size=10**7), "error", "memory"),
    # non-finite results and silent bounds
    Case("gd diverging step", _diverging_gd, "error", "step"),
    Case("myula diverging step", _diverging_myula, "error", "step"),
    Case("weight='auto' at a bound", _auto_at_bound, "warn", "bound"),
    # saving
    Case("save into a user's folder", _save_into_user_folder, "error", "overwrite"),
    Case("save overwrite=True keeps the user's files", _save_overwrite_keeps_others, "ok"),
    Case("save onto an existing file", _save_onto_file, "error", "file"),
    Case("save twice: no temp folders, normal mode", _save_twice_no_temps, "ok"),
    Case("CLI solve --out . in a user's folder", _cli_out_dot, "error", "overwrite"),
    # weights
    Case("flipped bytes in a shipped model", _flipped_bytes, "error", "sha256"),
    Case("NaN in a weights file", _nan_weights, "error", "NaN"),
    Case("terabyte config in a weights file", _absurd_config, "error", "widths"),
    Case("a pickle named .safetensors", _pickle_weights, "error", "pickle"),
    Case("a user's weights file without a card", _cardless_notice, "warn", "nothing verified"),
    # file input
    Case("batched (2, H, W) .npy", _npy_batched, "error", "batch"),
    Case("batched (2, 1, H, W) .npy", _npy_batched4, "error", "batch"),
    Case("ambiguous (3, H, 3) .npy", _npy_ambiguous, "error", "ambiguous"),
    Case("signed int16 .npy", _npy_signed, "ok"),
    Case("channel-first colour .npy", _npy_channel_first, "ok"),
    Case("channel-last colour .npy", _npy_channel_last, "ok"),
    Case(".npy header claiming 10^10 pixels", _npy_huge_header, "error", "pixels"),
    Case("PNG decompression bomb", _png_bomb, "error", "pixels"),
    Case("random bytes named .png", _garbage_png, "error", "readable"),
    Case("pickled object .npy", _npy_object, "error", "dtype"),
]
# fmt: on


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def verdict(case: Case, tmp: Path) -> tuple[str, str]:
    """``(verdict, detail)`` of one case: clear / unclear / silent / data loss."""
    handler = _Records()
    log = logging.getLogger("invprior")
    log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.run(tmp)
    except DataLossError as e:
        return "data loss", str(e)
    except ip.InvpriorError as e:
        msg = str(e)
        if case.expect == "error" and case.match.lower() in msg.lower():
            return "clear", msg
        return "unclear", f"{type(e).__name__}: {msg}"
    except AssertionError as e:
        return "silent", f"wrong result: {e}"
    except Exception as e:
        return "unclear", f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        log.removeHandler(handler)
    said = [str(w.message) for w in caught] + handler.messages
    if case.expect == "ok":
        return "clear", "worked"
    if case.expect == "warn" and any(case.match.lower() in s.lower() for s in said):
        return "clear", next(s for s in said if case.match.lower() in s.lower())
    return "silent", "finished without " + ("the warning" if case.expect == "warn" else "an error")
