"""Test images shipped by installed packages (scikit-image, matplotlib): no download, ever.

Every image has a fixed split so that tuning never sees test images:

- ``test``: camera, astronaut, coins, shepp_logan_phantom, mri, grace_hopper
- ``val``: moon, text, cell, clock
- ``train``: everything else
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from .._checks import InvpriorError

__all__ = ["IMAGES", "image", "image_names", "load_image", "load_image_file"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())

    return load


def _mpl_mri() -> np.ndarray:
    import matplotlib.cbook as cbook

    with cbook.get_sample_data("s1045.ima.gz") as f:
        raw = f.read()
    if isinstance(f, gzip.GzipFile) or raw[:2] != b"\x1f\x8b":
        data = raw
    else:  # pragma: no cover - older matplotlib returns the compressed stream
        data = gzip.decompress(raw)
    return np.frombuffer(data, dtype=">u2").reshape(256, 256).astype(np.float64)


def _mpl_hopper() -> np.ndarray:
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(mpimg.imread(f, format="jpg"))


def _motorcycle(i: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return np.asarray(skimage.data.stereo_motorcycle()[i])

    return load


def _lfw() -> np.ndarray:
    import skimage.data

    return np.asarray(skimage.data.lfw_subset()[0])


# name -> (loader, split)
IMAGES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "camera": (_skimage("camera"), "test"),
    "astronaut": (_skimage("astronaut"), "test"),
    "coins": (_skimage("coins"), "test"),
    "shepp_logan_phantom": (_skimage("shepp_logan_phantom"), "test"),
    "mri": (_mpl_mri, "test"),
    "grace_hopper": (_mpl_hopper, "test"),
    "moon": (_skimage("moon"), "val"),
    "text": (_skimage("text"), "val"),
    "cell": (_skimage("cell"), "val"),
    "clock": (_skimage("clock"), "val"),
    "brick": (_skimage("brick"), "train"),
    "grass": (_skimage("grass"), "train"),
    "gravel": (_skimage("gravel"), "train"),
    "page": (_skimage("page"), "train"),
    "retina": (_skimage("retina"), "train"),
    "hubble_deep_field": (_skimage("hubble_deep_field"), "train"),
    "chelsea": (_skimage("chelsea"), "train"),
    "coffee": (_skimage("coffee"), "train"),
    "rocket": (_skimage("rocket"), "train"),
    "immunohistochemistry": (_skimage("immunohistochemistry"), "train"),
    "microaneurysms": (_skimage("microaneurysms"), "train"),
    "motorcycle_left": (_motorcycle(0), "train"),
    "motorcycle_right": (_motorcycle(1), "train"),
    "lfw_face": (_lfw, "train"),
}


def image_names(split: Literal["train", "val", "test"] | None = None) -> list[str]:
    """Names of the shipped images, optionally of one split."""
    return [n for n, (_, s) in IMAGES.items() if split is None or s == split]


def _to_unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max if a.max() > 1 else 1)
    a = a.astype(np.float64)
    lo, hi = a.min(), a.max()
    if lo < 0 or hi > 1:
        a = (a - lo) / max(hi - lo, 1e-12)
    return a


def _gray(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:
        a = a[..., :3]
        return a @ np.array([0.2125, 0.7154, 0.0721])
    return a


def _prepare(a: np.ndarray, size: int | tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """Scale to [0, 1], set channels (``None``: keep), centre-crop to the target aspect ratio, resize."""
    from skimage.transform import resize

    a = _to_unit(a)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if channels is None:
        channels = 3 if a.ndim == 3 else 1
    if channels == 1:
        a = _gray(a)[..., None]
    elif channels == 3:
        a = a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)
    else:
        raise InvpriorError(f"channels must be 1 or 3, got {channels}")
    if size is not None:
        from .._checks import normalize_image_shape

        th, tw = (size, size) if isinstance(size, int) else size
        normalize_image_shape((th, tw))  # whole numbers >= 1 that fit in memory
        h, w = a.shape[:2]
        # centre crop to the target aspect ratio, then resize
        if h * tw > w * th:
            nh = max(1, round(w * th / tw))
            i0 = (h - nh) // 2
            a = a[i0 : i0 + nh]
        else:
            nw = max(1, round(h * tw / th))
            j0 = (w - nw) // 2
            a = a[:, j0 : j0 + nw]
        if a.shape[:2] != (th, tw):
            a = resize(a, (th, tw, a.shape[2]), anti_aliasing=True, order=1, mode="reflect")
    a = np.clip(a, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(torch.float32)[None]


def image(name: str, size: int | tuple[int, int] | None = 128, channels: int = 1) -> torch.Tensor:
    """A shipped image as a ``(1, channels, H, W)`` float32 tensor in [0, 1].

    ``size``: an int (square, centre-cropped) or ``(H, W)``; ``None`` keeps the native size.
    ``channels=1`` converts colour images to luminance; ``channels=3`` replicates gray images.
    """
    if name not in IMAGES:
        raise InvpriorError(f"unknown image {name!r}; choose one of: {', '.join(IMAGES)}")
    loader, _ = IMAGES[name]
    return _prepare(loader(), size, channels)


MAX_PIXELS = 64_000_000  # larger files are refused before they are decoded (decompression bombs)


def _npy_layout(path: str, shape: tuple[int, ...]) -> str:
    """How a ``.npy`` array's axes read as one image: ``"hw"``, ``"hwc"`` or ``"chw"`` (else an error)."""
    accepted = "(H, W), (H, W, C), (C, H, W) or (1, C, H, W) with C = 1, 3 or 4"
    if len(shape) == 4:
        if shape[0] != 1:
            raise InvpriorError(
                f"{path} holds a batch of {shape[0]} images {shape}; one image is read at a time: "
                f"save one of them, as {accepted}"
            )
        shape = shape[1:]
        if shape[0] not in (1, 3, 4):
            raise InvpriorError(f"{path} has shape (1, {', '.join(map(str, shape))}); expected {accepted}")
        return "chw"
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3:
        first, last = shape[0] in (1, 3, 4), shape[-1] in (1, 3, 4)
        if last and not first:
            return "hwc"
        if first and not last:
            return "chw"
        if first and last:
            raise InvpriorError(f"{path} has shape {shape}: channels first or last is ambiguous; expected {accepted}")
        raise InvpriorError(
            f"{path} has shape {shape}: neither axis 0 nor axis 2 is a channel axis (1, 3 or 4), so it looks like "
            f"a batch of {shape[0]} images; one image is read at a time: save one of them, as {accepted}"
        )
    raise InvpriorError(f"{path} has shape {shape}; expected {accepted}")


def _npy_to_unit(path: str, a: np.ndarray) -> np.ndarray:
    """Integers are scaled by their dtype's full range (signed ones including the negatives), booleans
    are 0/1, floats must already lie in [0, 1]."""
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        return (a.astype(np.float64) - info.min) / (float(info.max) - float(info.min))
    if a.dtype.kind != "f":
        raise InvpriorError(f"{path} holds dtype {a.dtype}; expected a real numeric image")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise InvpriorError(f"{path} holds floats outside [0, 1] (or NaN/Inf); rescale it to [0, 1] first")
    return a.astype(np.float64)


def load_image(path: str, size: int | tuple[int, int] | None = None, channels: int | None = None) -> torch.Tensor:
    """A user's image file as ``(1, C, H, W)`` float32 in [0, 1], keeping its size and its channels (grey
    or RGB; alpha dropped) unless ``size`` (an int: square centre crop, or ``(H, W)``) or ``channels``
    (1: grey by luminance, 3: colour) is given. PNG/JPEG/TIFF/BMP via Pillow, or ``.npy`` (see
    :func:`load_image_file` for the accepted layouts and value scaling)."""
    return load_image_file(path, size, channels)


def load_image_file(path: str, size: int | tuple[int, int] | None = None, channels: int | None = 1) -> torch.Tensor:
    """Read a PNG/JPEG (via Pillow) or a ``.npy`` array (never pickled) into ``(1, C, H, W)`` in [0, 1]
    (``channels=None`` keeps the file's; the default 1 converts to grey).

    ``.npy`` arrays may be ``(H, W)``, ``(H, W, C)``, ``(C, H, W)`` or ``(1, C, H, W)`` with
    ``C`` = 1, 3 or 4 (alpha is dropped); a batch of several images is refused, as is an ambiguous
    layout. Integer arrays are scaled by their dtype's full range (``uint8``: /255; ``int16``:
    ``(a + 32768) / 65535``), booleans are 0/1, and float arrays must already lie in [0, 1]. Files
    over ``MAX_PIXELS`` pixels are refused before they are decoded.
    """
    import os

    if not os.path.exists(path):
        raise InvpriorError(f"no such file: {path}")
    if os.path.isdir(path):
        raise InvpriorError(f"{path} is a folder, not an image file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            with open(path, "rb") as f:  # the header first: shape and dtype are checked before any data is read
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
        except (ValueError, OSError) as e:
            raise InvpriorError(f"{path} is not a valid .npy file: {e}") from e
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise InvpriorError(f"{path} holds dtype {dtype}; expected a numeric image (pickled objects are refused)")
        layout = _npy_layout(path, tuple(shape))
        if math.prod(shape) > 4 * MAX_PIXELS or min(shape) < 1:
            raise InvpriorError(f"{path} has shape {tuple(shape)}: empty, or over {MAX_PIXELS:,} pixels")
        try:
            m = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InvpriorError(f"{path} is not a valid .npy file: {e}") from e
        a = _npy_to_unit(path, m.reshape(m.shape[-3:] if m.ndim == 4 else m.shape))
        if layout == "chw":
            a = a.transpose(1, 2, 0)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        return _prepare(a, size, channels)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:  # pragma: no cover
        raise InvpriorError("reading image files needs Pillow (pip install pillow)") from e
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS or min(w, h) < 1:
                raise InvpriorError(
                    f"{path} is {w} x {h} pixels: empty, or over {MAX_PIXELS:,}; refused before decoding"
                )
            im.load()
            a = np.asarray(im.convert("RGB") if im.mode not in ("L", "I;16", "I", "F") else im)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise InvpriorError(f"{path} is not a readable image file: {e}") from e
    return _prepare(a, size, channels)
