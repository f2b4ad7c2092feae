"""Test images shipped by installed packages (scikit-image, matplotlib): no download, ever.

Every image has a fixed split so that tuning never sees test images:

- ``test``: camera, astronaut, coins, shepp_logan_phantom, mri, grace_hopper
- ``val``: moon, text, cell, clock
- ``train``: everything else
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from .._checks import InvpriorError

__all__ = ["IMAGES", "image", "image_names", "load_image_file"]


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


def _prepare(a: np.ndarray, size: int | tuple[int, int] | None, channels: int) -> torch.Tensor:
    """Scale to [0, 1], set channels, centre-crop to the target aspect ratio, resize (anti-aliased)."""
    from skimage.transform import resize

    a = _to_unit(a)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if channels == 1:
        a = _gray(a)[..., None]
    elif channels == 3:
        a = a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)
    else:
        raise InvpriorError(f"channels must be 1 or 3, got {channels}")
    if size is not None:
        th, tw = (size, size) if isinstance(size, int) else size
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


def load_image_file(path: str, size: int | tuple[int, int] | None = None, channels: int = 1) -> torch.Tensor:
    """Read a PNG/JPEG (via Pillow) or a ``.npy`` array (never pickled) into ``(1, C, H, W)`` in [0, 1].

    ``.npy`` arrays may be ``(H, W)``, ``(H, W, C)``, ``(C, H, W)`` or ``(1, C, H, W)``; float arrays
    must already lie in [0, 1].
    """
    import os

    if not os.path.exists(path):
        raise InvpriorError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise InvpriorError(f"{path} is not a plain numeric .npy array (pickled objects are refused): {e}") from e
        except OSError as e:
            raise InvpriorError(f"{path} is not a valid .npy file: {e}") from e
        if a.dtype.kind not in "biuf":
            raise InvpriorError(f"{path} holds dtype {a.dtype}; expected a numeric image")
        a = np.squeeze(a)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.transpose(1, 2, 0)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3):
            raise InvpriorError(f"{path} has shape {a.shape}; expected a 2-D or 3-D image")
        if a.dtype.kind == "f" and (np.nanmin(a) < 0 or np.nanmax(a) > 1 or not np.isfinite(a).all()):
            raise InvpriorError(f"{path} holds floats outside [0, 1] (or NaN); rescale it to [0, 1] first")
        return _prepare(a, size, channels)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:  # pragma: no cover
        raise InvpriorError("reading image files needs Pillow (pip install pillow)") from e
    try:
        with Image.open(path) as im:
            im.load()
            a = np.asarray(im.convert("RGB") if im.mode not in ("L", "I;16", "I", "F") else im)
    except (UnidentifiedImageError, OSError) as e:
        raise InvpriorError(f"{path} is not a readable image file: {e}") from e
    return _prepare(a, size, channels)
