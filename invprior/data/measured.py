"""Measured data in: a user's own measurement file and the operator that produced it, as a ``Problem``.

``measured_problem("blurry.png", "deblur", {"blur_sigma": 2}, noise="auto")`` reconstructs a photo that
was really blurred, where ``simulate`` would blur a clean one. Supported operators and files:

- ``denoise``, ``deblur`` (``blur_sigma``, or a ``kernel`` file), ``motion`` (``length``, ``angle``),
  ``sr`` (``factor``: the measurement is the low-resolution image): an image file (PNG/JPEG/TIFF/BMP,
  or ``.npy``: a float array is taken as it is, noise may carry it outside [0, 1]), size and
  channels kept;
- ``inpaint``: an image file and a ``mask`` file of its size (observed pixels: non-zero in a ``.npy``,
  brighter than mid-grey in a picture);
- ``mri``: a complex ``.npy`` k-space ``(H, W)`` in FFT layout (DC at ``[0, 0]``); the sampled
  entries are the ``mask`` file's non-zero ones, or the non-zero entries of the k-space;
- ``ct``: a ``.npy`` sinogram ``(angles, detectors)`` of a square image of side ``size`` (default:
  ``detectors / sqrt(2)``, the side whose diagonal the detector spans).

``noise="auto"`` estimates the Gaussian noise level from the data where the operator allows it (image
measurements): the median absolute finest-scale diagonal Haar coefficient / 0.6745 (Donoho &
Johnstone 1994), over the 2×2 blocks that are fully observed. It over-estimates on textured images
(their detail counts as noise), and k-space or sinograms have no such estimate: give ``noise=``.

The operator's parameters may also come from a small setup file (``load_setup``, the CLI's
``--setup``), JSON or TOML, e.g. ``deblur.toml``::

    operator = "deblur"
    kernel = "kernel.npy"      # paths are relative to the setup file
    noise = 0.01               # or "auto"
    [params]                   # e.g. blur_sigma = 2.0 instead of a kernel
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .._errors import InvpriorError

__all__ = ["MEASURED_OPERATORS", "SETUP_KEYS", "estimate_noise", "load_kernel", "load_setup", "measured_problem"]

MEASURED_OPERATORS = ("denoise", "deblur", "motion", "sr", "inpaint", "mri", "ct")


SETUP_KEYS = ("operator", "params", "noise", "mask", "kernel")


def load_setup(path: str | Path) -> dict:
    """The measurement setup of a JSON or TOML file: ``operator`` (a name), ``params`` (a table of
    numbers), ``noise`` (a sigma or ``"auto"``), ``mask`` and ``kernel`` (files, relative to the setup
    file). Unknown keys and wrong types are one clear error each."""
    path = Path(path)
    if not path.is_file():
        raise InvpriorError(f"no setup file {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            raw = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            import json

            raw = json.loads(text)
        else:
            raise InvpriorError(f"a setup file is .json or .toml, got {path.name}")
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise InvpriorError(f"{path} is not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(raw, dict):
        raise InvpriorError(f"{path} must hold a table of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SETUP_KEYS))
    if unknown:
        raise InvpriorError(f"{path}: unknown setting(s) {unknown}; a setup has {', '.join(SETUP_KEYS)}")
    out = dict(raw)
    if "operator" in out and not isinstance(out["operator"], str):
        raise InvpriorError(f'{path}: operator is a name, e.g. "deblur", got {out["operator"]!r}')
    params = out.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in params.values()
    ):
        raise InvpriorError(f'{path}: params is a table of numbers, e.g. {{"blur_sigma": 2.0}}, got {params!r}')
    out["params"] = {k: float(v) for k, v in params.items()}
    noise = out.get("noise")
    if noise is not None and noise != "auto" and (isinstance(noise, bool) or not isinstance(noise, (int, float))):
        raise InvpriorError(f'{path}: noise is a number or "auto", got {noise!r}')
    for key in ("mask", "kernel"):
        if key in out:
            if not isinstance(out[key], str):
                raise InvpriorError(f"{path}: {key} is a file name, got {out[key]!r}")
            out[key] = str(path.parent / out[key])
    return out


def estimate_noise(img: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Gaussian noise sigma of an image ``(..., H, W)`` by the MAD of its finest diagonal Haar
    coefficients; ``mask`` (same H, W; True = observed) restricts it to fully observed 2×2 blocks."""
    x = img.double().reshape(-1, *img.shape[-2:])
    h, w = (x.shape[-2] // 2) * 2, (x.shape[-1] // 2) * 2
    if h < 2 or w < 2:
        raise InvpriorError("noise='auto' needs an image of at least 2x2 pixels")
    x = x[:, :h, :w]
    d = (x[:, 0::2, 0::2] - x[:, 1::2, 0::2] - x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 2
    if mask is not None:
        m = mask.reshape(-1, *mask.shape[-2:])[:, :h, :w].bool()
        full = m[:, 0::2, 0::2] & m[:, 1::2, 0::2] & m[:, 0::2, 1::2] & m[:, 1::2, 1::2]
        d = d[full.expand_as(d)]
        if d.numel() < 16:
            raise InvpriorError("noise='auto' found too few fully observed 2x2 blocks; give noise=")
    return float(d.abs().median()) / 0.6745


def _load_array(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InvpriorError(f"no such {what} file: {path}")
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InvpriorError(f"{path} is not a valid .npy file: {e}") from e
    from .images import load_image

    return load_image(str(p), channels=1)[0, 0].numpy()


def load_kernel(path: str) -> torch.Tensor:
    """A blur kernel from a file: ``.npy`` (must already be non-negative and sum to 1) or an image (a
    picture of the kernel, divided by its sum). Sides must be odd (the centre pixel is the origin)."""
    from ..operators.kernels import check_kernel

    k = torch.as_tensor(_load_array(path, "kernel")).double()
    if k.dim() != 2:
        raise InvpriorError(f"the kernel in {path} must be 2-D, got shape {tuple(k.shape)}")
    if Path(path).suffix.lower() != ".npy":
        if float(k.sum()) <= 0:
            raise InvpriorError(f"the kernel image {path} is black")
        k = k / k.sum()
    if k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise InvpriorError(f"the kernel in {path} is {k.shape[0]}x{k.shape[1]}: its sides must be odd")
    return check_kernel(k, what=f"kernel in {path}")


def _mask(path: str, shape: tuple[int, int]) -> torch.Tensor:
    """Observed entries: non-zero in a ``.npy``; brighter than mid-grey in a picture (JPEG noise is not a pixel)."""
    a = torch.as_tensor(_load_array(path, "mask"))
    m = a != 0 if Path(path).suffix.lower() == ".npy" else a > 0.5
    if tuple(m.shape) != shape:
        raise InvpriorError(f"the mask in {path} is {tuple(m.shape)}; the measurement needs {shape}")
    return m


def _measured_image(path: str, grey: bool) -> torch.Tensor:
    """A measured image as ``(1, C, H, W)`` float64. A float ``.npy`` is taken as it is (noise may carry
    it outside [0, 1]: that is data, not an error); integer arrays and picture files are scaled to [0, 1]."""
    from .images import load_image

    if Path(path).suffix.lower() == ".npy":
        a = _load_array(path, "measurement")
        if a.dtype.kind == "f":
            if not np.isfinite(a).all():
                raise InvpriorError(f"{path} has NaN or infinite values")
            if a.ndim == 2:
                a = a[None]
            if a.ndim != 3 or a.shape[0] not in (1, 3):
                shape = a.shape
                raise InvpriorError(f"{path}: a measured image must be (H, W) or (C, H, W), C = 1 or 3, got {shape}")
            t = torch.from_numpy(a.astype(np.float64))[None]
            return t.mean(1, keepdim=True) if grey and t.shape[1] == 3 else t
    return load_image(path, channels=1 if grey else None).double()


def measured_problem(
    measurement: str,
    operator: str,
    params: dict[str, float] | None = None,
    *,
    noise: float | str,
    mask: str | None = None,
    kernel: str | None = None,
    grey: bool = False,
):
    """``(Problem, description)`` for a measured file (see the module docstring). ``noise``: the
    Gaussian sigma in the measurement's units ([0, 1] images) or ``"auto"``."""
    from ..operators import CT, MRI, Blur, Identity, Inpainting, Problem, SuperResolution

    params = dict(params or {})
    if operator not in MEASURED_OPERATORS:
        raise InvpriorError(f"--measurement supports the operators {', '.join(MEASURED_OPERATORS)}; got {operator!r}")
    allowed = {"denoise": set(), "deblur": {"blur_sigma"}, "motion": {"length", "angle"}, "sr": {"factor"},
               "inpaint": set(), "mri": set(), "ct": {"size"}}[operator]  # fmt: skip
    extra = set(params) - allowed
    if extra:
        takes = sorted(allowed) or "no parameters"
        raise InvpriorError(f"{operator} on measured data takes {takes}, not {sorted(extra)}")
    if kernel is not None and operator != "deblur":
        raise InvpriorError("a kernel file is for --operator deblur")
    if mask is not None and operator not in ("inpaint", "mri"):
        raise InvpriorError("a mask file is for --operator inpaint or mri")
    est_mask = None
    if operator in ("mri", "ct"):
        if noise == "auto":
            raise InvpriorError(f"noise='auto' cannot be estimated from {operator} data (no image to read it from); "
                                "give --noise SIGMA")  # fmt: skip
        a = _load_array(measurement, "measurement")
        if operator == "mri":
            if a.ndim != 2 or not np.iscomplexobj(a):
                raise InvpriorError(f"MRI data must be a complex (H, W) k-space .npy, got {a.dtype} {a.shape}")
            k = torch.from_numpy(a.astype(np.complex128))
            m = _mask(mask, tuple(k.shape)) if mask is not None else k != 0
            A = MRI((1, *k.shape), m)
            y = k[m][None]
            desc = f"Cartesian MRI, {int(m.sum())} of {m.numel()} k-space samples (measured)"
        else:
            if a.ndim != 2 or np.iscomplexobj(a):
                got = f"{a.dtype} {a.shape}"
                raise InvpriorError(f"CT data must be a real (angles, detectors) sinogram .npy, got {got}")
            n_ang, n_det = a.shape
            side = int(params.get("size", n_det / math.sqrt(2)))
            if side < 2 or math.ceil(side * math.sqrt(2)) > n_det + 1:
                raise InvpriorError(
                    f"a {side}x{side} image needs at least {math.ceil(side * math.sqrt(2))} detectors; the sinogram "
                    f"has {n_det} (size = detectors / sqrt(2) at most)"
                )
            A = CT((1, side, side), n_angles=n_ang, n_detectors=n_det)
            y = torch.from_numpy(a.astype(np.float64))[None, None]
            desc = f"parallel-beam CT, {n_ang} angles x {n_det} detectors (measured)"
        sigma = float(noise)
    else:
        img = _measured_image(measurement, grey)
        shape = tuple(img.shape[1:])
        if operator == "denoise":
            A, y, desc = Identity(shape), img, "denoising (measured)"
        elif operator == "deblur":
            if kernel is not None:
                if "blur_sigma" in params:
                    raise InvpriorError("give a kernel file or blur_sigma, not both")
                A, desc = Blur(shape, load_kernel(kernel)), f"deblurring with the kernel of {kernel} (measured)"
            else:
                s = params.get("blur_sigma", 2.0)
                A, desc = Blur.gaussian(shape, s), f"Gaussian deblurring, sigma {s:g} px (measured)"
            y = img
        elif operator == "motion":
            L, ang = params.get("length", 9.0), params.get("angle", 30.0)
            A, y, desc = Blur.motion(shape, L, ang), img, f"motion deblurring, {L:g} px at {ang:g} deg (measured)"
        elif operator == "sr":
            f = int(params.get("factor", 4))
            A = SuperResolution((shape[0], shape[1] * f, shape[2] * f), f)
            y, desc = img, f"super-resolution x{f} of a {shape[1]}x{shape[2]} image (measured)"
        else:  # inpaint
            if mask is None:
                raise InvpriorError("inpainting measured data needs --mask FILE (white = observed)")
            m = _mask(mask, shape[1:])
            A = Inpainting(shape, m)
            y, est_mask = A(img), m
            desc = f"inpainting, {float(m.float().mean()):.0%} of the pixels observed (measured)"
        sigma = estimate_noise(img, est_mask) if noise == "auto" else float(noise)
    if sigma < 0 or not math.isfinite(sigma):
        raise InvpriorError(f"the noise level must be a finite number >= 0, got {sigma}")
    if tuple(y.shape[1:]) != tuple(A.out_shape):
        raise InvpriorError(f"the measurement has shape {tuple(y.shape[1:])} but {A.name} gives {tuple(A.out_shape)}")
    return Problem(A, y, sigma), desc
